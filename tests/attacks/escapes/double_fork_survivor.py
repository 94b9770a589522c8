# expect: blocked | import of 'os'
# os-only: denied | Operation not permitted
# Daemonize: fork, new session, fork again, so the survivor is re-parented.
import os
import time


def mutate(records):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(600)
        os._exit(0)
    return records
