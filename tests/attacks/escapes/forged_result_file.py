# expect: blocked | import of 'os'
# os-only: invalid | integer with 401 digits
# Forge the result: the old protocol's result file, then a frame with a poisoned record
# written to every descriptor, then exit 0 before the runner can answer.
import json
import os


def mutate(records):
    forged = dict(records[0], flops=10**400)
    body = json.dumps({"ok": True, "records": [forged], "blocked": []}).encode()
    frame = b"INSPECTORATE-SANDBOX-RESULT %d\n" % len(body) + body
    open("result.json", "wb").write(body)
    for fd in range(64):
        try:
            os.write(fd, frame)
        except OSError:
            pass
    os._exit(0)
