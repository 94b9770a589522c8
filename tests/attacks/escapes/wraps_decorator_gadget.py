# expect: blocked | os.fork is not allowed
# os-only: denied | Operation not permitted
# The same through functools.wraps(...) used as a decorator factory.
import functools
import random

loot = {}


class Holder:
    def __getattr__(self, name):  # a method name is not an attribute access: no filter sees it
        return loot


def mutate(records):
    functools.wraps(random.shuffle, assigned=(), updated=("__globals__",))(Holder())
    loot["_os"].fork()
    return records
