# expect: error
# eval/exec/compile are simply absent (NameError).
def mutate(records):
    eval("__import__('os')")
    return records
