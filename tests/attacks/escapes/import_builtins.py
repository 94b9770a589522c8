# expect: blocked | import of 'builtins'
# os-only: ok
# The builtins module holds the unrestricted functions.
import builtins


def mutate(records):
    builtins.eval("1")
    return records
