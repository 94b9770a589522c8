# expect: error | recursion too deep
# os-only: error | recursion too deep
# Unbounded recursion ends as an error, not a crash of the parent.
def mutate(records):
    return mutate(records)
