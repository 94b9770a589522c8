# expect: memory | memory limit exceeded
# os-only: memory | memory limit exceeded
# Materialize an endless generator (of fresh 800 kB lists, so the limit comes quickly).
import itertools


def mutate(records):
    return list([0] * 10**5 for _ in itertools.count())
