# expect: blocked | import of 'os'
# os-only: invalid | nested 100001 deep
# A forged frame 100001 brackets deep: json.loads would hit its recursion limit.
import os


def mutate(records):
    body = b"[" * 100001 + b"]" * 100001
    frame = b"INSPECTORATE-SANDBOX-RESULT %d\n" % len(body) + body
    for fd in range(64):
        try:
            os.write(fd, frame)
        except OSError:
            pass
    os._exit(0)
