# expect: denied | No space left on device
# os-only: denied | No space left on device
# Fill the scratch dir with many files: the cap is on the total, not per file.
def mutate(records):
    block = "x" * 65536
    for n in range(100000):
        with open(f"fill{n}.txt", "w") as fh:
            fh.write(block)
    return records
