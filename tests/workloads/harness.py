"""Run a workload script under ``inspectorate capture`` with a plan, verify the run, and
tabulate per-phase outcomes (used by tests/capture and bench/capture_workloads.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def capture_run(
    script: str,
    plan: dict[str, Any],
    out: Path,
    *,
    shared_host: bool = False,
    claims: dict[str, Any] | None = None,
    timeout_s: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """``inspectorate capture --claims C --out OUT -- python HERE/script PLAN``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    plan_path = out.parent / f"{out.name}.plan.json"
    plan_path.write_text(json.dumps(plan))
    claims_path = out.parent / f"{out.name}.claims.json"
    claims_path.write_text(json.dumps(claims or {}))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    cmd = [
        sys.executable,
        "-m",
        "inspectorate.cli",
        "capture",
        "--claims",
        str(claims_path),
        "--out",
        str(out),
    ]
    if shared_host:
        cmd.append("--shared-host")
    cmd += ["--", sys.executable, str(HERE / script), str(plan_path)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)


def outcomes(run: Path, policy: str = "strict") -> dict[str, dict[str, Any]]:
    """phase -> outcome, each claim property's decision, and the p1 evidence that matters."""
    from inspectorate.verify import verify_run

    verdict = verify_run(run, policy=policy)
    out = {}
    for ph in verdict.phases:
        props = {f.property: f for f in ph.findings}
        p1 = props.get("p1_op_type")
        ev = p1.evidence if p1 is not None else {}
        out[ph.phase] = {
            "outcome": ph.outcome,
            "certified": ph.verdict == 1,
            "decisions": {name: f.decision for name, f in props.items()},
            "sensor_sync_bytes": ev.get("sensor_sync_bytes"),
            "traffic": ev.get("traffic"),
            "host_net_tx_b": ev.get("host_net_tx_b"),
            "tree_cores": ev.get("tree_cores"),
            "cpu_wait_share": (props["compute"].evidence if "compute" in props else {}).get("cpu_wait_share"),
        }
    return out


class Neighbour:
    """Another tenant of the host: one process spinning a core, one pair flooding the
    loopback over TCP (host namespace), for at most ``seconds``. ``rate()``: bytes/s sent."""

    def __init__(self, seconds: float = 120.0) -> None:
        self.seconds = seconds
        self.spin: subprocess.Popen[bytes] | None = None
        self.sent = 0
        self.t0 = self.t1 = 0.0
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> Neighbour:
        code = f"import time\nend=time.time()+{self.seconds}\nwhile time.time()<end: pass"
        self.spin = subprocess.Popen([sys.executable, "-c", code])
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        self.threads = [
            threading.Thread(target=self._sink, args=(server,), daemon=True),
            threading.Thread(target=self._flood, args=(port,), daemon=True),
        ]
        for t in self.threads:
            t.start()
        self.t0 = time.time()
        return self

    def _sink(self, server: socket.socket) -> None:
        conn, _ = server.accept()
        with conn, server:
            while conn.recv(1 << 20):
                pass

    def _flood(self, port: int) -> None:
        buf = b"x" * (1 << 20)
        end = time.time() + self.seconds
        with socket.create_connection(("127.0.0.1", port)) as sock:
            while not self.stop.is_set() and time.time() < end:
                sock.sendall(buf)
                self.sent += len(buf)

    def rate(self) -> float:
        return self.sent / max((self.t1 or time.time()) - self.t0, 1e-9)

    def __exit__(self, *exc: object) -> None:
        self.t1 = time.time()
        self.stop.set()
        if self.spin is not None:
            self.spin.kill()
            self.spin.wait()
        for t in self.threads:
            t.join(timeout=5)


def host_traffic(run: Path) -> float:
    """Bytes the host's interfaces (loopback included) sent during the capture: shown by
    the sensor, never read as the workload's."""
    from inspectorate.trace.streams import read_sensor

    frame = read_sensor(run / "sensor.jsonl").frame
    return float(frame["host_net_tx_b"].max() - frame["host_net_tx_b"].min())
