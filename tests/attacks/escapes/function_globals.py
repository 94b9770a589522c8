# expect: blocked | attribute '__globals__'
# os-only: ok
# A function's __globals__ leads to the module namespace and its builtins.
def mutate(records):
    g = mutate.__globals__
    return records
