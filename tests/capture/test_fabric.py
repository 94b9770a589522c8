"""The multi-host fabric on one machine: namespaces joined by veth links, a sensor and a
key per host; the cross-host checks pass honest fabrics and catch hidden and phantom hosts.

The fast tests run a plain socket workload (no torch) across three hosts; the slow one
runs the real gloo DDP job across two and checks the all-reduce volume law.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from inspectorate.attacks._fabric_attacks import FABRIC_FORGERS, forge
from inspectorate.capture._fabric import capture_fabric
from inspectorate.capture._isolate import missing_rights
from inspectorate.errors import InputError
from inspectorate.verify._fabric import FABRIC_CHECKS, verify_fabric

MISSING = missing_rights()
needs_netns = pytest.mark.skipif(bool(MISSING), reason=f"no namespaces/cgroups here: {'; '.join(MISSING)}")

# rank 0 accepts WORLD_SIZE-1 peers and reads what each sends; the others connect (retrying
# until rank 0 listens) and send 256 KB; then all exit
EXCHANGE = textwrap.dedent(
    """
    import os, socket, time
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    if rank == 0:
        srv = socket.create_server((addr, port))
        for _ in range(world - 1):
            conn, _ = srv.accept()
            while conn.recv(65536):
                pass
            conn.close()
    else:
        for _ in range(300):
            try:
                s = socket.create_connection((addr, port), timeout=5)
                break
            except OSError:
                time.sleep(0.05)
        s.sendall(b"x" * 262144)
        s.close()
    """
)
CLAIMS = "window_s: 1.0\ndefaults: {op: training, model: m, n_params: 66112, world_size: %d}\nphases:\n  - {name: train, start: 0, duration: 600}\n"


def _claims(tmp: Path, world: int) -> Path:
    path = tmp / "claims.yml"
    path.write_text(CLAIMS % world)
    return path


def _verifier(src: Path) -> dict[str, object]:
    """What the verifier keeps (its keyring, its challenge, the log operator's ledger)."""
    challenge = (src / "verifier" / "challenge.txt").read_text().strip()
    return {"keyring": src / "verifier" / "ring.json", "ledger": src / "ledger", "challenge": challenge}


@pytest.fixture(scope="module")
def fabric3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if MISSING:
        pytest.skip(f"no namespaces/cgroups here: {'; '.join(MISSING)}")
    tmp = tmp_path_factory.mktemp("fabric3")
    script = tmp / "exchange.py"
    script.write_text(EXCHANGE)
    result = capture_fabric(
        [sys.executable, str(script)],
        _claims(tmp, 3),
        tmp / "fab",
        hosts=3,
        hz=20,
        sign_every=0.5,
        port=29611,
    )
    assert result.exit_codes == [0, 0, 0]
    return result.out


@needs_netns
def test_honest_fabric_conserves_every_link_to_the_byte(fabric3: Path) -> None:
    verdict = verify_fabric(fabric3, **_verifier(fabric3))  # type: ignore[arg-type]
    by = {c.name: f for c, f in verdict.findings}
    assert set(by) == set(FABRIC_CHECKS)
    assert verdict.caught_by() == []
    links = by["link_conservation"].evidence["links"]
    assert len(links) == 3  # a full mesh of three
    assert all(gap == 0 for link in links.values() for gap in link["gaps"])
    # each peer really sent its 256 KB to host 0, and the rx side saw exactly that
    assert links["h0.p1-h1.p0"]["b_tx"] >= 262144 and links["h0.p2-h2.p0"]["b_tx"] >= 262144
    assert by["world_size"].evidence["carried"] == ["h0", "h1", "h2"]
    assert by["host_signatures"].decision == "consistent"
    assert by["unlisted_signers"].evidence["signers"] == sorted(
        json.loads((fabric3 / "fabric.json").read_text())["hosts"][i]["host_key"] for i in range(3)
    )
    # no step records: the volume law cannot apply and says so instead of passing
    assert by["allreduce_volume"].decision == "unverifiable"


@needs_netns
def test_each_host_dir_is_a_capture_run_dir_with_its_own_signed_sensor(fabric3: Path) -> None:
    manifest = json.loads((fabric3 / "fabric.json").read_text())
    keys = {h["host_key"] for h in manifest["hosts"]}
    assert len(keys) == 3 and manifest["world_size"] == 3
    for h in manifest["hosts"]:
        first = json.loads((fabric3 / h["dir"] / "sensor.jsonl").read_text().splitlines()[0])
        assert first["nonce"].endswith(f":h{h['index']}")
        assert (fabric3 / h["dir"] / "windows.jsonl").is_file()
    assert not list(fabric3.rglob("*.key")), "private keys must never land in the fabric directory"


@needs_netns
@pytest.mark.parametrize("name", ["hide_host", "hide_host_competent", "phantom_host"])
def test_forgers_are_caught_by_fabric_evidence(fabric3: Path, tmp_path: Path, name: str) -> None:
    forged = forge(name, fabric3, tmp_path / name)
    verdict = verify_fabric(forged, **_verifier(fabric3))  # type: ignore[arg-type]
    assert verdict.outcome == "inconsistent"
    fabric = verdict.caught_by("fabric")
    assert "link_conservation" in fabric
    if name.startswith("hide"):
        assert verdict.caught_by("host") == []  # each surviving host alone looks honest
        assert "unlisted_signers" in fabric
    else:
        assert "host_signatures" in verdict.caught_by("host")


@needs_netns
def test_bad_input_exits_2_without_running(tmp_path: Path) -> None:
    claims = _claims(tmp_path, 2)
    with pytest.raises(InputError, match="--hosts"):
        capture_fabric(["true"], claims, tmp_path / "a", hosts=1)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("evidence")
    with pytest.raises(InputError, match="not empty"):
        capture_fabric(["true"], claims, tmp_path / "b", hosts=2)
    from inspectorate.cli import invoke

    args = ["--claims", str(claims), "--out", str(tmp_path / "c")]
    assert invoke(["capture-fabric", "--hosts", "2", *args, "--hz", "5", "--", "true"]) == 2
    assert invoke(["capture-fabric", "--hosts", "20", *args, "--", "true"]) == 2
    assert not (tmp_path / "c").exists()
    cli = [sys.executable, "-m", "inspectorate.cli", "verify-fabric", str(tmp_path / "nowhere")]
    proc = subprocess.run(cli, capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


@needs_netns
def test_a_failed_rank_stops_its_peers_and_the_idle_fabric_shows_missing_ranks(tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text("import os, sys, time\nif os.environ['RANK'] == '1': sys.exit(3)\ntime.sleep(600)\n")
    t0 = time.monotonic()
    result = capture_fabric(
        [sys.executable, str(script)], _claims(tmp_path, 2), tmp_path / "fab", hosts=2, hz=20, grace_s=0.5
    )
    assert result.exit_codes[1] == 3 and result.exit_codes[0] != 0 and time.monotonic() - t0 < 120
    verdict = verify_fabric(result.out, **_verifier(result.out))  # type: ignore[arg-type]
    by = {c.name: f for c, f in verdict.findings}
    assert by["host_signatures"].decision == "consistent"  # the evidence is genuine...
    assert "missing rank" in " ".join(by["world_size"].evidence["problems"])  # ...and shows no job


@needs_netns
@pytest.mark.slow
def test_ddp_over_the_mesh_obeys_the_ring_allreduce_law(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    job = [sys.executable, "-m", "inspectorate.capture._fabric_job", "--steps", "20"]
    result = capture_fabric(job, _claims(tmp_path, 2), tmp_path / "fab", hosts=2, hz=10, port=29612)
    assert result.exit_codes == [0, 0]
    verdict = verify_fabric(result.out, **_verifier(result.out))  # type: ignore[arg-type]
    by = {c.name: f for c, f in verdict.findings}
    assert verdict.outcome == "consistent", [f.evidence for f in by.values()]
    ratios = [h["ratio"] for h in by["allreduce_volume"].evidence["hosts"].values()]
    assert all(1.0 <= r < 1.1 for r in ratios), ratios
    forged = forge("understate_model", result.out, tmp_path / "under")
    assert verify_fabric(forged, **_verifier(result.out)).caught_by() == ["allreduce_volume"]  # type: ignore[arg-type]


def test_every_forger_and_check_is_registered_with_its_metadata() -> None:
    assert {"hide_host", "hide_host_competent", "phantom_host", "understate_model"} <= set(FABRIC_FORGERS)
    assert all(f.claim for f in FABRIC_FORGERS.values())
    assert {c.scope for c in FABRIC_CHECKS.values()} == {"host", "fabric"}
