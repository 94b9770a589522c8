"""What does the OS sandbox cost per red-team round?

One LLM-style mutation (``MUTATE``) runs on the same input, the violating baseline a
round hands to the sandbox (``violate(trace)``), in three arms, interleaved so that
drift in the machine's load hits all alike, and the median seconds per call of each arm
is printed:
  - in-process: ``exec`` of the code and a direct ``mutate`` call on a JSON copy (no
    isolation at all: the unsandboxed call),
  - subprocess: ``run_sandboxed(..., Limits(unsandboxed=True))`` (the child and its
    Python layer, rlimits and seccomp, no bwrap: what ``--unsandboxed`` runs),
  - sandbox: ``run_sandboxed`` with the full OS boundary (bwrap namespaces + seccomp).
Then whole loops: ``redteam`` with the offline attacker (library attacks only: it never
runs code, so never enters the sandbox) and with a scripted attacker that emits code
every round (the LLM path without an API), both for ``--rounds`` rounds.

    python bench/sandbox_overhead.py --trace legit_finetune.jsonl \
        --commitment no_frontier_training.yml --repeats 30 --rounds 60
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from typing import Any

MUTATE = """
import copy
def mutate(records):
    out = copy.deepcopy(records)
    for r in out:
        if r["op_type"] == "training":
            r["op_type"] = "eval"
    return out
"""

# What a code-writing attacker sends over 60 rounds: plausible mutations, a few that
# fail validation and a few escape attempts, cycled.
SCRIPT = [
    ("relabel-eval", MUTATE),
    (
        "split-jobs",
        "import copy\ndef mutate(records):\n    out = copy.deepcopy(records)\n"
        "    for i, r in enumerate(out):\n        r['job_id'] = r['job_id'] + '-part' + str(i % 4)\n    return out\n",
    ),
    (
        "deflate-flops",
        "def mutate(records):\n    for r in records:\n        r['flops'] = r['flops'] / 10\n"
        "        r['tokens_processed'] = r['tokens_processed'] * 10\n    return records\n",
    ),
    ("escape-os", "import os\ndef mutate(records):\n    os.fork()\n    return records\n"),
    ("bad-type", "def mutate(records):\n    records[0]['flops'] = 'many'\n    return records\n"),
    ("huge-int", "def mutate(records):\n    records[0]['flops'] = 10**400\n    return records\n"),
]


class ScriptedCoder:
    """An attacker that writes code every round (cycling ``SCRIPT``), as an LLM does."""

    name = "scripted"

    def prepare(self, commitment: Any, baseline: Any) -> None:
        self.n = 0

    def propose(self, history: Any) -> Any:
        from inspectorate.attacks import Proposal

        name, code = SCRIPT[self.n % len(SCRIPT)]
        self.n += 1
        return Proposal(name, "scripted", "bench", code=code)


def in_process(code: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    namespace: dict[str, Any] = {}
    exec(compile(code, "<mutate>", "exec"), namespace)
    return namespace["mutate"](json.loads(json.dumps(records)))


def arms(records: list[dict[str, Any]], repeats: int) -> dict[str, list[float]]:
    from inspectorate.attacks import Limits, run_mutation

    calls = {
        "in-process": lambda: in_process(MUTATE, records),
        "subprocess (--unsandboxed)": lambda: run_mutation(MUTATE, records, Limits(unsandboxed=True)),
        "sandbox (bwrap + seccomp)": lambda: run_mutation(MUTATE, records, Limits()),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            out = call()
            times[name].append(time.perf_counter() - start)
            assert len(out) == len(records)
    return times


def loop(rounds: int, attacker: Any, commitment: Any, clean: list[dict[str, Any]]) -> tuple[float, Any]:
    from inspectorate.attacks import redteam

    start = time.perf_counter()
    report = redteam(rounds, attacker, commitment, clean, None, seed=1)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", required=True, help="clean baseline trace (e.g. legit_finetune.jsonl)")
    parser.add_argument("--commitment", required=True, help="commitment YAML it complies with")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()

    from inspectorate.attacks import violate
    from inspectorate.attacks._sandbox import isolation_problem
    from inspectorate.commitment import load_commitment
    from inspectorate.trace import read_trace

    problem = isolation_problem()
    if problem:
        raise SystemExit(f"no OS sandbox here: {problem}")
    commitment = load_commitment(args.commitment)
    clean = read_trace(args.trace).records
    records = violate(copy.deepcopy(clean), commitment)
    size = len(json.dumps(records))
    print(f"input: {len(records)} records, {size / 1024:.0f} KiB of JSON; {args.repeats} interleaved repeats")
    times = arms(records, args.repeats)
    base = statistics.median(times["in-process"])
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:28s} median {med * 1000:8.1f} ms  ({med / base:6.1f}x in-process)")
    sandbox = statistics.median(times["sandbox (bwrap + seccomp)"])
    plain = statistics.median(times["subprocess (--unsandboxed)"])
    print(f"  sandbox overhead over --unsandboxed: {(sandbox - plain) * 1000:.1f} ms per round")
    for label, attacker in (("offline (no code)", "offline"), ("scripted code", ScriptedCoder())):
        seconds, report = loop(args.rounds, attacker, commitment, clean)
        per = statistics.median(r["seconds"] for r in report.rounds)
        errors = sum(1 for r in report.rounds if r["error"])
        print(
            f"redteam {args.rounds} rounds, {label:18s}: {seconds:6.2f} s total, median round "
            f"{per * 1000:.0f} ms, {errors} rounds ended in a sandbox/input error"
        )


if __name__ == "__main__":
    main()
