# expect: blocked | import of 'os'
# os-only: error | 'LANG': 'C.UTF-8'
# Dump the environment (the test puts a secret in the parent's): only the fixed one is there.
import os


def mutate(records):
    raise ValueError(str(dict(os.environ)))
