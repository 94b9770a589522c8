# expect: blocked | import of 'os'
# os-only: denied | Operation not permitted
# Fork a child that outlives the run (the test checks no sandbox process is left).
import os
import time


def mutate(records):
    if os.fork() == 0:
        time.sleep(600)
    return records
