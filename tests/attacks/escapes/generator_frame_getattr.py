# expect: blocked | getattr of 'gi_frame'
# os-only: ok
# The frame walk with getattr and string names.
def mutate(records):
    gen = (x for x in [1])
    frame = getattr(gen, "gi_frame")
    return records
