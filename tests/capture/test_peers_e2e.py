"""End to end: a helper started on the host before the capture does the work a
workload claiming idle asks it for, over a pathname unix socket or TCP to the veth's
host address; verify must not certify that phase, and must not flag a quiet helper."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspectorate.capture import _capture
from inspectorate.capture._isolate import missing_rights

ISOLATION = missing_rights()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(ISOLATION), reason=f"cgroups/network namespaces unavailable: {'; '.join(ISOLATION)}"
    ),
]

# The helper: serves one connection; per request burns ``burn`` CPU-seconds (0: none).
HELPER = r"""
import socket, sys, time
where, burn = sys.argv[1], float(sys.argv[2])
if where.isdigit():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", int(where)))
else:
    s = socket.socket(socket.AF_UNIX); s.bind(where)
s.listen()
print("ready", flush=True)
c, _ = s.accept()
while c.recv(64):
    t = time.process_time()
    while time.process_time() - t < burn:
        sum(i * i for i in range(1000))
    c.send(b"done\n")
"""
# The workload: idle by its claim; asks the helper for "200 training steps" twice.
WORKLOAD = r"""
import socket, struct, sys, time
where = sys.argv[1]
if where.isdigit():  # the host end of the veth: this namespace's default gateway
    for line in open("/proc/net/route").read().splitlines()[1:]:
        f = line.split()
        if f[1] == "00000000":
            gw = socket.inet_ntoa(struct.pack("<I", int(f[2], 16)))
    c = socket.create_connection((gw, int(where)))
else:
    c = socket.socket(socket.AF_UNIX); c.connect(where)
for _ in range(2):
    c.send(b"run 200 training steps\n"); c.recv(64)
time.sleep(1.5)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def _captured(tmp_path: Path, name: str, where: str, burn: float) -> tuple[dict, int]:
    helper = subprocess.Popen([sys.executable, "-c", HELPER, where, str(burn)], stdout=subprocess.PIPE)
    try:
        assert helper.stdout is not None and helper.stdout.readline().strip() == b"ready"
        claims = tmp_path / f"{name}.json"
        claims.write_text(json.dumps({"phases": [{"name": "p", "op": "idle", "start": 0, "end": 60}]}))
        _capture.capture([sys.executable, "-c", WORKLOAD, where], claims, tmp_path / name)
    finally:
        helper.kill()
        helper.wait()
    from inspectorate.verify import verify_run

    phase = verify_run(tmp_path / name).to_dict()["phases"][0]
    return phase, helper.pid


def _compute(phase: dict) -> dict:
    return next(f for f in phase["findings"] if f["property"] == "compute")


def test_work_relayed_to_a_host_helper_is_not_certified_and_a_quiet_helper_is_no_alarm(tmp_path):
    t0 = time.monotonic()
    sock = str(tmp_path / "helper.sock")
    busy, pid = _captured(tmp_path, "unix", sock, 1.2)
    found = _compute(busy)
    assert busy["outcome"] != "consistent" and found["decision"] == "unverifiable", found
    assert f"relayed to pid {pid} " in found["evidence"]["reason"] and sock in found["evidence"]["reason"]
    assert found["evidence"]["relay_cpu_s"] > 1.5 > found["evidence"]["relay_allowance_s"]

    tcp, pid = _captured(tmp_path, "tcp", str(_free_port()), 1.2)
    found = _compute(tcp)
    assert tcp["outcome"] != "consistent" and found["decision"] == "unverifiable", found
    assert (
        found["evidence"]["relay_peers"][0]["pid"] == pid
        and found["evidence"]["relay_peers"][0]["via"] == "tcp"
    )

    quiet, pid = _captured(tmp_path, "quiet", str(tmp_path / "quiet.sock"), 0.0)
    found = _compute(quiet)
    assert found["decision"] == "consistent", found
    # recorded, changes nothing (the other peers are whoever reads this test's stdio pipes)
    assert pid in [p["pid"] for p in found["evidence"]["relay_peers"]]
    assert time.monotonic() - t0 < 60
