# expect: blocked | attribute 'f_globals'
# os-only: ok
# without-syntax-filter: blocked
# An exception's traceback holds frames.
def mutate(records):
    try:
        1 / 0
    except Exception as exc:
        exc.__traceback__.tb_frame.f_back.f_globals
    return records
