# expect: error | is not JSON serializable
# os-only: error | is not JSON serializable
# Return an endless generator instead of a list.
import itertools


def mutate(records):
    return itertools.cycle(records)
