# expect: blocked | import of 'sys'
# os-only: ok
# sys._getframe(1).f_globals: the caller's (unrestricted) frame.
import sys


def mutate(records):
    sys._getframe(1).f_globals
    return records
