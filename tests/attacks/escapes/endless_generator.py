# expect: memory | memory limit exceeded
# os-only: memory | memory limit exceeded
# Materialize an endless generator.
import itertools


def mutate(records):
    return list(itertools.cycle(records))
