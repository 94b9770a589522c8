# expect: blocked | definition of '__getattr__' is not allowed
# os-only: denied | Operation not permitted
# without-syntax-filter: blocked
# The same through functools.wraps(...) used as a decorator factory.
import functools
import random

loot = {}


class Holder:
    def __getattr__(self, name):  # a definition, not an attribute access
        return loot


def mutate(records):
    functools.wraps(random.shuffle, assigned=(), updated=("__globals__",))(Holder())
    loot["_os"].fork()
    return records
