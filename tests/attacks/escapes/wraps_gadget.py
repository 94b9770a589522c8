# expect: blocked | os.fork is not allowed
# os-only: denied | Operation not permitted
# functools.update_wrapper copies __globals__ of a library function into a dict we hold.
import functools
import random

loot = {}


class Holder:
    def __getattr__(self, name):  # a method name is not an attribute access: no filter sees it
        return loot


def mutate(records):
    functools.update_wrapper(Holder(), random.randint, assigned=(), updated=("__globals__",))
    loot["_os"].fork()
    return records
