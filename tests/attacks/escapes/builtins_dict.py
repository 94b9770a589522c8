# expect: blocked | name '__builtins__'
# os-only: ok
# Fetch the real eval from __builtins__.
def mutate(records):
    __builtins__["eval"]("1")
    return records
