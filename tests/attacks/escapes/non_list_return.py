# expect: invalid | must return a list of records
# os-only: invalid | must return a list of records
# A dict is not a list of records.
def mutate(records):
    return {"records": records}
