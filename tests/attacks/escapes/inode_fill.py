# expect: blocked | more than 1000 files opened for writing
# os-only: cpu timeout | exceeded
# Empty files cost no tmpfs bytes but an inode each: create them until something stops it.
def mutate(records):
    n = 0
    while True:
        open(f"empty{n}", "w").close()
        n += 1
