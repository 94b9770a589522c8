# expect: blocked | import of 'threading'
# os-only: timeout
# A thread (allowed by seccomp: not a process) that keeps the child alive after mutate.
import threading
import time


def mutate(records):
    threading.Thread(target=time.sleep, args=(600,)).start()
    return records
