# expect: blocked | that import form
# os-only: ok
# random keeps os as random._os.
from random import _os


def mutate(records):
    return records
