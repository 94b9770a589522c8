# expect: blocked | import from 'ctypes'
# os-only: ok
# ctypes would reach libc directly.
from ctypes import CDLL


def mutate(records):
    return records
