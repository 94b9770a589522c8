# expect: invalid | missing field(s)
# os-only: invalid | missing field(s)
# Dicts without the record schema.
def mutate(records):
    return [{"record_id": "x"}]
