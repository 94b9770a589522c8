# expect: memory | memory limit exceeded
# os-only: memory | memory limit exceeded
# Grow a list until the memory limit.
def mutate(records):
    hoard = []
    while True:
        hoard.append([0] * 10**6)
