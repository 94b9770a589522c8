# expect: blocked | name '__import__'
# os-only: denied | Operation not permitted
# __import__ by name.
def mutate(records):
    __import__("os").fork()
    return records
