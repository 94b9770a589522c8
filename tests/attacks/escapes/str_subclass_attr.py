# expect: blocked | getattr
# os-only: denied | Operation not permitted
# A str subclass that lies to name checks (startswith, ==, hash) while naming __class__.
class Name(str):
    def startswith(self, *args):
        return False


def mutate(records):
    base = getattr(getattr((), Name("__class__")), Name("__base__"))
    for cls in getattr(base, Name("__subclasses__"))():
        if getattr(cls, Name("__name__")) == "_wrap_close":
            getattr(getattr(cls, Name("__init__")), Name("__globals__"))["fork"]()
    return records
