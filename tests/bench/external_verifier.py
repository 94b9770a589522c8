"""A tiny external verifier for the bench's ``--cmd`` test, standard library only.

It follows the ``check`` / ``verify`` CLI contract (docs/bench.md) the way a third party in
any language would: ``check TRACE --commitment C --format json`` prints
``{"verdict": 1|0, "confidence"}``; ``verify RUN_DIR --format json`` prints
``{"phases": [{"phase", "verdict", "confidence", "outcome"}]}``. Its rules are naive on
purpose (a phase claimed idle with busy host CPU is inconsistent; a trace whose hash
chain does not link, or whose training FLOPs exceed 1e21, is a violation).
EXTERNAL_MODE=crash makes it fail with exit 3, EXTERNAL_MODE=hang makes it sleep.
"""

import csv
import gzip
import hashlib
import json
import os
import sys
import time


def records(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def check(path):
    prev = "0" * 64
    broken = False
    flops = 0.0
    for r in records(path):
        broken |= r.get("prev_record_hash") != prev
        prev = hashlib.sha256(json.dumps(r, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        if r.get("op_type") == "training":
            flops += float(r.get("flops", 0))
    bad = broken or flops > 1e21
    return {"verdict": 0 if bad else 1, "confidence": 0.9 if bad else 0.6}


def verify(run):
    events = [json.loads(line) for line in open(os.path.join(run, "workload_labels.jsonl"))]
    cpu = []
    path = os.path.join(run, "cpu.csv")
    if os.path.exists(path):
        cpu = [(float(r["timestamp"]), float(r["cpu_percent"])) for r in csv.DictReader(open(path))]
    spans = {}
    for e in events:
        spans.setdefault(e["phase"], {})[e["event"]] = e
    phases = []
    for name, ev in spans.items():
        start, end = ev["start"], ev.get("end", ev["start"])
        busy = [c for t, c in cpu if start["t"] <= t <= end["t"]]
        load = sum(busy) / len(busy) / 100.0 if busy else None
        if load is None:
            phases.append({"phase": name, "verdict": 0, "confidence": 0.5, "outcome": "unverifiable"})
            continue
        bad = start["claimed"] == "idle" and load > 0.5
        conf = min(max(load, 0.5), 1.0)
        phases.append(
            {
                "phase": name,
                "verdict": 0 if bad else 1,
                "confidence": conf,
                "outcome": "inconsistent" if bad else "consistent",
            }
        )
    return {"phases": phases}


def main(argv):
    mode = os.environ.get("EXTERNAL_MODE")
    if mode == "crash":
        raise SystemExit(3)
    if mode == "hang":
        time.sleep(60)
    cmd, target = argv[0], argv[1]
    out = check(target) if cmd == "check" else verify(target)
    print(json.dumps(out))
    return 1 if out.get("verdict") == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
