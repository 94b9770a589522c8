# expect: error
# Values JSON cannot carry.
def mutate(records):
    records[0]["x"] = {1, 2}
    return records
