# expect: blocked | import of 'os'
# os-only: denied | Operation not permitted
# Fork bomb.
import os


def mutate(records):
    while True:
        os.fork()
