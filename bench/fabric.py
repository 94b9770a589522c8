"""What fabric evidence adds over per-host evidence (issue 21 item 5).

Captures a real fabric (``--hosts`` namespaces on a veth mesh, one gloo DDP rank each,
each host under its own signing sensor), or reads one given with ``--fabric``. Then it
verifies the honest fabric and every registered forger's rewrite of it twice: with the
per-host checks only (``scope=host``: each host's signed stream, each host's claims
agreeing with the manifest) and with the cross-host checks (``scope=fabric``), and
prints which checks catch which attack beside what ``inspectorate verify --head-log`` says of
each host's run directory alone, the per-link conservation residuals and the
all-reduce volume ratios the tolerances were set from.

    python bench/fabric.py --hosts 3 --steps 30            # as root; prints a table
    python bench/fabric.py --fabric RUN --json out.json    # an existing fabric
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def capture(root: Path, hosts: int, steps: int, hidden: int) -> Path:
    from inspectorate.capture._fabric import capture_fabric
    from inspectorate.capture._fabric_job import n_params

    claims = root / "claims.yml"
    claims.write_text(
        "window_s: 1.0\n"
        f"defaults: {{op: training, model: fabric-mlp, n_params: {n_params(64, hidden)}, world_size: {hosts},"
        " batch_size: 32, sequence_length: 1}\n"
        "phases:\n  - {name: train, start: 0, duration: 3600}\n"
    )
    job = [
        sys.executable,
        "-m",
        "inspectorate.capture._fabric_job",
        "--steps",
        str(steps),
        "--hidden",
        str(hidden),
    ]
    t0 = time.monotonic()
    result = capture_fabric(job, claims, root / "fabric", hosts=hosts, hz=10, port=29633)
    print(f"captured {hosts} hosts in {time.monotonic() - t0:.1f} s wall; exit codes {result.exit_codes}")
    if result.exit_code:
        raise SystemExit(f"the job failed; see {root / 'fabric' / 'hosts'}/h*/capture.log")
    return result.out


def judge(fabric: Path, verifier: dict[str, Any]) -> dict[str, Any]:
    from inspectorate.verify._fabric import verify_fabric

    per_host = verify_fabric(fabric, scope="host", **verifier)
    cross = verify_fabric(fabric, scope="fabric", **verifier)
    return {
        "verify_per_host": full_verify(fabric, verifier),
        "per_host": per_host.caught_by(),
        "fabric": cross.caught_by(),
        "per_host_outcome": per_host.outcome,
        "fabric_outcome": cross.outcome,
        "findings": {c.name: f.to_dict() for c, f in per_host.findings + cross.findings},
    }


def full_verify(fabric: Path, verifier: dict[str, Any]) -> dict[str, str]:
    """``inspectorate verify`` with ``--head-log`` on each host's run directory alone: the
    project's whole per-host verdict (telemetry properties and signed evidence)."""
    from inspectorate.verify import verify_run
    from inspectorate.verify._signed import attach_signed

    manifest = json.loads((fabric / "fabric.json").read_text())
    out = {}
    for h in manifest["hosts"]:
        log = verifier["ledger"] / Path(h["log"]).name
        log = log if log.is_dir() else fabric / h["log"]
        verdict = verify_run(fabric / h["dir"])
        challenge = f"{verifier['challenge']}:h{h['index']}"
        verdict = attach_signed(verdict, log, verifier["keyring"], challenge=challenge)
        out[f"h{h['index']}"] = str(verdict.outcome)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fabric", type=Path, help="An existing capture-fabric directory (skip the capture).")
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--json", type=Path, help="Write the figures here.")
    ap.add_argument("--keep", type=Path, help="Keep the captured fabric here (a new directory).")
    args = ap.parse_args()
    from inspectorate.attacks._fabric_attacks import FABRIC_FORGERS, forge

    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-fabric-"))
    try:
        src = args.fabric or capture(work, args.hosts, args.steps, args.hidden)
        if args.keep and not args.fabric:
            shutil.copytree(src, args.keep)
        verifier = {
            "keyring": src / "verifier" / "ring.json",
            "ledger": src / "ledger",
            "challenge": (src / "verifier" / "challenge.txt").read_text().strip(),
        }
        rows = {"honest": judge(src, verifier)}
        for name in FABRIC_FORGERS:
            rows[name] = judge(forge(name, src, work / "forged" / name), verifier)
        report(rows, load)
        if args.json:
            args.json.write_text(
                json.dumps({"load_avg": load, "rows": rows}, indent=2, sort_keys=True) + "\n"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    honest_ok = not rows["honest"]["per_host"] and not rows["honest"]["fabric"]
    caught = all(r["per_host"] or r["fabric"] for n, r in rows.items() if n != "honest")
    return 0 if honest_ok and caught else 1


def report(rows: dict[str, Any], load: tuple[float, float, float]) -> None:
    print(f"load average at start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2-core shared box)")
    print(f"{'fabric':<22} {'`verify` per host':<34} {'per-host checks catch':<22} fabric checks catch")
    for name, r in rows.items():
        full = " ".join(f"{h}:{o[:5]}" for h, o in r["verify_per_host"].items())
        print(f"{name:<22} {full:<34} {', '.join(r['per_host']) or '-':<22} {', '.join(r['fabric']) or '-'}")
    honest = rows["honest"]["findings"]
    for link, v in (honest["link_conservation"]["evidence"].get("links") or {}).items():
        print(
            f"  honest link {link}: a->b {v['a_tx']} B sent, residual {v['gaps'][0]} B; b->a {v['b_tx']} B, residual {v['gaps'][1]} B"
        )
    for host, v in (honest["allreduce_volume"]["evidence"].get("hosts") or {}).items():
        print(
            f"  honest {host}: tx {v['tx']} B = {v['ratio']:.4f} x ring all-reduce (band {v['band'][0]:.2f}..{v['band'][1]:.3f})"
        )


if __name__ == "__main__":
    raise SystemExit(main())
