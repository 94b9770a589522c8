# expect: output | exceeds
# os-only: output | exceeds
# Return far more data than the output limit allows.
def mutate(records):
    return [dict(records[0], pad="x" * 1000) for _ in range(5000)]
