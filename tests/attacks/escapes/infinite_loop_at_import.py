# expect: cpu timeout
# os-only: cpu timeout
# Spin at module level, before mutate is even called.
x = 0
while True:
    x += 1


def mutate(records):
    return records
