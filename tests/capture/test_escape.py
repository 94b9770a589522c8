"""A workload may not step out of what the sensor reads: capabilities dropped before
the command runs (no setns/unshare), and the escape watch records a process that moves
itself to another cgroup, which verify's ``integrity`` then fails (root only)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from inspectorate.capture import _capture
from inspectorate.capture._escape import drop_capabilities, read_escapes
from inspectorate.capture._isolate import missing_rights

ISOLATION = missing_rights()
needs_isolation = pytest.mark.skipif(
    bool(ISOLATION), reason=f"cgroups/network namespaces unavailable here: {'; '.join(ISOLATION)}"
)
CLONE_NEWNET = 0x40000000

# Moves itself to the parent of every cgroup it is in (the host's), then burns CPU there.
ESCAPE = r"""
import os, time
time.sleep(0.6)
pid = str(os.getpid())
moved = 0
for root, dirs, files in os.walk("/sys/fs/cgroup"):
    if "inspectorate-" in os.path.basename(root) and "cgroup.procs" in files:
        with open(os.path.join(root, "cgroup.procs")) as fh:
            if pid in fh.read().split():
                with open(os.path.join(os.path.dirname(root), "cgroup.procs"), "w") as out:
                    out.write(pid)
                moved += 1
    if root.count("/") > 5:
        dirs[:] = []
t = time.process_time()
while time.process_time() - t < 0.8:
    pass
print("moved", moved)
"""
UNSHARE = (
    "import ctypes, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    f"failed = libc.unshare({CLONE_NEWNET}) != 0 and ctypes.get_errno() == 1\n"  # EPERM
    "sys.exit(0 if failed else 1)\n"
)
# Many short children that exit at once: exiting is not escaping.
HONEST = "import subprocess\nfor _ in range(40):\n    subprocess.run(['true'])\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CAP_SETPCAP) to drop capabilities")
def test_a_command_without_cap_sys_admin_cannot_leave_its_network_namespace():
    pid = os.fork()
    if pid == 0:  # the child: drop, exec (as capture does), then try what an escapee would
        try:
            drop_capabilities()
            os.execv(sys.executable, [sys.executable, "-c", UNSHARE])
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _run(tmp_path: Path, code: str, name: str) -> Path:
    claims = tmp_path / f"{name}.claims.json"
    claims.write_text(json.dumps({"phases": [{"name": "p", "op": "idle", "start": 0, "end": 30}]}))
    out = tmp_path / name
    _capture.capture([sys.executable, "-c", code], claims, out)
    return out


@needs_isolation
def test_a_process_that_moves_out_of_the_cgroup_is_recorded_and_fails_integrity(tmp_path):
    from inspectorate.verify import verify_run

    honest = read_escapes(_run(tmp_path, HONEST, "honest"))
    assert honest is not None and honest["escapes"] == [] and honest["problems"] == []
    run = _run(tmp_path, ESCAPE, "escape")
    watch = read_escapes(run)
    assert watch is not None and watch["fork_events"]
    assert [e["left"] for e in watch["escapes"]] == ["cgroup"], watch
    verdict = verify_run(run).to_dict()
    found = {f["property"]: f for f in verdict["phases"][0]["findings"]}
    assert found["integrity"]["decision"] == "inconsistent", found["integrity"]
    assert found["integrity"]["evidence"]["escaped_processes"][0]["left"] == "cgroup"
