# expect: blocked
# ctypes would reach libc directly.
from ctypes import CDLL


def mutate(records):
    return records
