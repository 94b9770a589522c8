# expect: blocked | import of 'importlib'
# os-only: denied | Operation not permitted
# importlib.import_module.
import importlib


def mutate(records):
    importlib.import_module("os").fork()
    return records
