# expect: invalid
# A dict is not a list of records.
def mutate(records):
    return {"records": records}
