# expect: blocked | must define a function mutate
# os-only: blocked | must define a function mutate
# No mutate() defined.
def transform(records):
    return records
