# expect: memory | memory limit exceeded
# os-only: memory | memory limit exceeded
# Allocate far beyond the address-space limit.
def mutate(records):
    blob = " " * (2**34)
    return records
