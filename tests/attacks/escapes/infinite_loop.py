# expect: cpu timeout
# os-only: cpu timeout
# Spin forever: the CPU limit (or the wall clock) kills it.
def mutate(records):
    while True:
        pass
