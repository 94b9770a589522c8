# expect: blocked
# Plain import of os.
import os


def mutate(records):
    os.system("true")
    return records
