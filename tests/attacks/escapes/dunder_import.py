# expect: blocked
# __import__ by name.
def mutate(records):
    __import__("os").system("true")
    return records
