# expect: blocked | definition of '__eq__' is not allowed
# os-only: denied | Operation not permitted
# without-syntax-filter: error
# A str subclass equal to every name: `name in ALLOWED_TUPLE` checks would pass "os".
class Name(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


def mutate(records):
    __import__(Name("os")).fork()
    return records
