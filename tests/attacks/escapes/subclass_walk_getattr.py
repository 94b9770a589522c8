# expect: blocked | getattr of '__class__'
# os-only: ok
# The same walk with attribute names built at run time.
def mutate(records):
    base = getattr(getattr((), "__cl" + "ass__"), "__bases__")[0]
    getattr(base, "__subclasses__")()
    return records
