# expect: blocked
# No mutate() defined.
def transform(records):
    return records
