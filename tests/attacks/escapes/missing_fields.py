# expect: invalid
# Dicts without the record schema.
def mutate(records):
    return [{"record_id": "x"}]
