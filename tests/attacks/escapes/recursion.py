# expect: error
# Unbounded recursion ends as an error, not a crash of the parent.
def mutate(records):
    return mutate(records)
