# expect: error | name 'eval' is not defined
# os-only: ok
# eval/exec/compile are simply absent (NameError).
def mutate(records):
    eval("__import__('os')")
    return records
