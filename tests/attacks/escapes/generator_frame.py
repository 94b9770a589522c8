# expect: blocked | attribute 'f_back'
# os-only: ok
# without-syntax-filter: blocked
# gi_frame.f_back: from a generator's frame to the sandbox runner's frame.
def mutate(records):
    gen = (x for x in [1])
    frame = gen.gi_frame.f_back
    return records
