# expect: error | name 'type' is not defined
# os-only: ok
# type() is absent: no dynamic classes with smuggled attributes.
def mutate(records):
    type("X", (), {})
    return records
