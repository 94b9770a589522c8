# expect: blocked | import of 'ctypes'
# os-only: denied | Operation not permitted
# ctypes straight to libc: fork(2) and socket(2) without any Python wrapper.
import ctypes
import os


def mutate(records):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.fork() < 0 or libc.socket(2, 1, 0) < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return records
