# expect: error
# type() is absent: no dynamic classes with smuggled attributes.
def mutate(records):
    type("X", (), {})
    return records
