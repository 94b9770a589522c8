# expect: blocked | pattern attribute
# os-only: ok
# Pattern matching reads attributes without an attribute node.
def mutate(records):
    match ():
        case object(__class__=cls):
            pass
    return records
