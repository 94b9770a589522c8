# expect: error | is not JSON serializable
# os-only: error | is not JSON serializable
# Values JSON cannot carry.
def mutate(records):
    records[0]["x"] = {1, 2}
    return records
