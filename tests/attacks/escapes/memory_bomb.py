# expect: memory
# Allocate far beyond the address-space limit.
def mutate(records):
    blob = " " * (2**34)
    return records
