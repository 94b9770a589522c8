"""What does signing add to the sensor's CPU? (goal: <= 1%)

The sensor samples a sleeping child at ``--hz`` for ``--duration`` seconds, in blocks that
alternate WITHOUT and WITH a head signer (Ed25519 head signature, one log leaf, one signed
tree head every ``--sign-every`` seconds), interleaved so drift in the machine's load hits
both arms alike. The figure is CPU time of this process (the sensor runs in its main
thread), not wall time: ``time.process_time`` per second of sampling. A second figure
prices one signing round directly (median of ``--rounds``), which is the cost the
interleaved blocks resolve only as noise on a loaded box.

    python bench/signing_overhead.py --hz 10 --sign-every 1 --duration 5 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _world(root: Path) -> tuple[object, object]:
    from inspectorate.ledger import LogOperator, generate_key, init_log

    host, log = generate_key("host-a", "host"), generate_key("log-a", "log")
    init_log(root / "log", "log-a")
    return host, LogOperator(root / "log", log)


def sensor_block(root: Path, args: argparse.Namespace, signed: bool, block: int) -> float:
    """CPU-seconds per second of sampling for one block."""
    from inspectorate.capture._proc_sensor import run_sensor
    from inspectorate.ledger import HeadSigner

    signer = None
    if signed:
        host, op = _world(root / f"ledger_{block}")
        signer = HeadSigner(host, op, window_s=args.sign_every)  # type: ignore[arg-type]
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        c0, w0 = time.process_time(), time.monotonic()
        run_sensor(
            root / f"run_{block}", pid=child.pid, hz=args.hz, duration=args.duration, gpu=False, signer=signer
        )
        return (time.process_time() - c0) / (time.monotonic() - w0)
    finally:
        child.kill()
        child.wait()


def signing_round_s(root: Path, rounds: int) -> float:
    """Median CPU-seconds of one signing round (sign head, append leaf, publish STH)."""
    from inspectorate.ledger import HeadSigner

    host, op = _world(root / "rounds")
    signer = HeadSigner(host, op)  # type: ignore[arg-type]
    signer.stream, signer.nonce = "0" * 64, "bench"
    times = []
    for i in range(rounds):
        c0 = time.process_time()
        signer.sign(f"{i:064x}", i + 1, False)
        times.append(time.process_time() - c0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--sign-every", type=float, default=5.0)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain, signed = [], []
        for r in range(args.repeats):
            plain.append(sensor_block(root, args, False, 2 * r))
            signed.append(sensor_block(root, args, True, 2 * r + 1))
        per_round = signing_round_s(root, args.rounds)
    base = statistics.median(plain)
    result = {
        "hz": args.hz,
        "sign_every_s": args.sign_every,
        "sensor_cpu_per_s_unsigned": round(base, 5),
        "sensor_cpu_per_s_signed": round(statistics.median(signed), 5),
        "overhead_blocks": round(statistics.median(signed) / base - 1, 4),
        "signing_round_cpu_s": round(per_round, 6),
        "overhead_priced": round(per_round / args.sign_every / base, 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
