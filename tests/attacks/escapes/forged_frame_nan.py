# expect: blocked | import of 'os'
# os-only: invalid | NaN is not a number
# A forged frame with NaN where a number goes (json.loads accepts NaN by default).
import os


def mutate(records):
    body = b'{"ok": true, "records": [{"flops": NaN}], "blocked": []}'
    frame = b"INSPECTORATE-SANDBOX-RESULT %d\n" % len(body) + body
    for fd in range(64):
        try:
            os.write(fd, frame)
        except OSError:
            pass
    os._exit(0)
