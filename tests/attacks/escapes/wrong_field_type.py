# expect: invalid
# Schema field with the wrong type.
def mutate(records):
    records[0]["flops"] = "lots"
    return records
