# expect: invalid | nested 61 deep
# os-only: invalid | nested 61 deep
# A record field nested deeper than any record needs.
def mutate(records):
    value = []
    for _ in range(57):
        value = [value]
    records[0]["extra"] = value
    return records
