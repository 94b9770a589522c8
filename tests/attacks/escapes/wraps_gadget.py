# expect: blocked | definition of '__getattr__' is not allowed
# os-only: denied | Operation not permitted
# without-syntax-filter: blocked
# functools.update_wrapper copies __globals__ of a library function into a dict we hold.
import functools
import random

loot = {}


class Holder:
    def __getattr__(self, name):  # a definition, not an attribute access
        return loot


def mutate(records):
    functools.update_wrapper(Holder(), random.randint, assigned=(), updated=("__globals__",))
    loot["_os"].fork()
    return records
