# expect: invalid
# A list, but not of records.
def mutate(records):
    return [1, 2, 3]
