# expect: blocked
# Fork bomb.
import os


def mutate(records):
    while True:
        os.fork()
