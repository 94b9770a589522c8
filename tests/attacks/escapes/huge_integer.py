# expect: invalid | integer with 401 digits
# os-only: invalid | integer with 401 digits
# A 10**400 FLOP count: float(value) downstream would raise OverflowError.
def mutate(records):
    records[0]["flops"] = 10**400
    return records
