# expect: invalid | must be a JSON object
# os-only: invalid | must be a JSON object
# A list, but not of records.
def mutate(records):
    return [1, 2, 3]
