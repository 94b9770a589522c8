# expect: blocked | import of 'os'
# os-only: denied | Operation not permitted
# Plain import of os.
import os


def mutate(records):
    os.fork()
    return records
