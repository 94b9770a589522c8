# expect: invalid | must be a number
# os-only: invalid | must be a number
# Schema field with the wrong type.
def mutate(records):
    records[0]["flops"] = "lots"
    return records
