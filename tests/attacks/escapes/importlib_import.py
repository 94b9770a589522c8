# expect: blocked
# importlib.import_module.
import importlib


def mutate(records):
    importlib.import_module("os")
    return records
