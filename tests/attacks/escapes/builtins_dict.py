# expect: blocked
# Fetch the real eval from __builtins__.
def mutate(records):
    __builtins__["eval"]("1")
    return records
