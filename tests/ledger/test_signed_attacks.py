"""Each signed-evidence attack of issue 21 item 3, done the way a prover with the files
(but not the keys, nor the witness's or verifier's memory) would do it, and detected;
and the honest stream passes (0 honest runs flagged)."""

from __future__ import annotations

import json
from pathlib import Path

from inspectorate.ledger import open_log, verify_signed
from inspectorate.ledger._log import COSIGS, LEAVES, STHS, read_jsonl
from inspectorate.ledger._merkle import root_from_hashes
from inspectorate.trace._canonical import canonical_bytes, rechain
from signed_world import World


def _kinds(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.kind for p in report.problems}


def _write_lines(path: Path, records: list[dict]) -> None:  # type: ignore[type-arg]
    path.write_bytes(b"".join(canonical_bytes(r) + b"\n" for r in records))


def test_honest_stream_is_consistent(world: World) -> None:
    stream = world.stream("sensor.jsonl")
    assert world.cosign() is None
    report = verify_signed(stream, world.log, world.ring, challenge="nonce-1", state=world.root / "v.json")
    assert report.decision == "consistent", report.problems
    assert report.heads == 8 and report.host == "host-a" and report.witnessed_size == 8
    view = open_log(world.log)  # the audit's cached prefix roots are the RFC roots
    assert all(view.root(k) == root_from_hashes(view.hashes[:k]) for k in range(len(view.hashes) + 1))
    # a second honest run on the same log, later: still consistent against the saved state
    stream2 = world.stream("sensor2.jsonl", nonce="nonce-2")
    assert world.cosign() is None
    again = verify_signed(stream2, world.log, world.ring, challenge="nonce-2", state=world.root / "v.json")
    assert again.decision == "consistent", again.problems


def test_unwitnessed_stream_is_unverifiable(world: World) -> None:
    stream = world.stream("sensor.jsonl")
    report = verify_signed(stream, world.log, world.ring)
    assert report.decision == "unverifiable" and _kinds(report) == {"unwitnessed"}


def test_tail_truncation(world: World) -> None:
    stream = world.stream("sensor.jsonl")
    world.cosign()
    records = read_jsonl(stream)
    _write_lines(stream, records[:-3])  # drop the last samples and the stop record: chain still intact
    report = verify_signed(stream, world.log, world.ring)
    assert report.decision == "inconsistent" and "truncation" in _kinds(report)


def test_tail_truncation_of_stream_and_log_together(world: World) -> None:
    """The prover cuts the stream and the log's leaves and tree heads back to an earlier
    head; the witness's cosignature of the larger tree still covers the cut leaves."""
    stream = world.stream("sensor.jsonl")
    world.cosign()
    _write_lines(stream, read_jsonl(stream)[:4])
    _write_lines(world.log / LEAVES, read_jsonl(world.log / LEAVES)[:4])
    _write_lines(world.log / STHS, [s for s in read_jsonl(world.log / STHS) if s["size"] <= 4])
    report = verify_signed(stream, world.log, world.ring)
    assert report.decision == "inconsistent" and "truncation" in _kinds(report)
    # and with the cosignatures deleted too, nothing is witnessed any more: not certified
    (world.log / COSIGS).unlink()
    assert verify_signed(stream, world.log, world.ring).decision != "consistent"


def test_rechained_stream(world: World) -> None:
    stream = world.stream("sensor.jsonl")
    world.cosign()
    records = read_jsonl(stream)
    records[3]["cpu_s"] = 0.0  # hide work, then rebuild every prev_record_hash
    _write_lines(stream, rechain([{k: v for k, v in r.items()} for r in records]))
    report = verify_signed(stream, world.log, world.ring)
    assert report.decision == "inconsistent" and "rechain" in _kinds(report)


def test_stream_rebuilt_from_its_first_record_is_not_in_the_log(world: World) -> None:
    stream = world.stream("sensor.jsonl")
    world.cosign()
    records = read_jsonl(stream)
    records[0]["t"] = 123.0
    _write_lines(stream, rechain(records))
    report = verify_signed(stream, world.log, world.ring)
    assert report.decision == "inconsistent" and "rechain" in _kinds(report)


def test_forged_head_without_the_key(world: World) -> None:
    """Re-chain the stream and rewrite the log's leaves to match: without the host key
    the new heads' signatures fail (provenance), and the tree heads no longer match."""
    stream = world.stream("sensor.jsonl")
    world.cosign()
    leaves = read_jsonl(world.log / LEAVES)
    leaves[-1]["head"] = "0" * 64
    _write_lines(world.log / LEAVES, leaves)
    report = verify_signed(stream, world.log, world.ring)
    assert report.decision == "inconsistent"
    assert {"provenance", "split_view"} <= _kinds(report)


def test_old_log_replayed_as_new_fails_the_challenge(world: World) -> None:
    old = world.stream("sensor.jsonl", nonce="nonce-yesterday")
    world.cosign()
    assert verify_signed(old, world.log, world.ring, challenge="nonce-yesterday").decision == "consistent"
    report = verify_signed(old, world.log, world.ring, challenge="nonce-today")
    assert report.decision == "inconsistent" and "replay" in _kinds(report)


def test_old_copy_of_the_log_is_a_rollback(world: World, tmp_path: Path) -> None:
    """The verifier accepted the log at a larger size; an older copy (a smaller tree, every
    signature valid) is shown as current."""
    first = world.stream("s1.jsonl", nonce="n1")
    world.cosign()
    snapshot = {name: (world.log / name).read_bytes() for name in (LEAVES, STHS, COSIGS, "log.json")}
    state = world.root / "v.json"
    world.stream("s2.jsonl", nonce="n2")
    world.cosign()
    assert (
        verify_signed(world.root / "s2.jsonl", world.log, world.ring, challenge="n2", state=state).decision
        == "consistent"
    )
    for name, data in snapshot.items():
        (world.log / name).write_bytes(data)
    report = verify_signed(first, world.log, world.ring, challenge="n1", state=state)
    assert report.decision == "inconsistent" and "replay" in _kinds(report)


def test_split_view_same_size_other_root(world: World, tmp_path: Path) -> None:
    """The log operator (its key on the prover's side) shows verifier B a different tree
    of the same size; gossip of B's signed head exposes it, and the witness refuses it."""
    world.stream("sensor.jsonl")
    assert world.cosign() is None
    fork = world.root / "fork"
    fork.mkdir()
    (fork / "log.json").write_bytes((world.log / "log.json").read_bytes())
    leaves = read_jsonl(world.log / LEAVES)
    from inspectorate.ledger import LogOperator

    op = LogOperator(fork, world.keys["log-a"])
    forged = dict(leaves[0], t=1.0)  # any other content: the operator need not re-sign leaves
    for leaf in [forged, *leaves[1:]]:
        op.append(leaf)
    peer_sth = op.publish()
    peer = world.root / "peer.json"
    peer.write_text(json.dumps(peer_sth))
    report = verify_signed(None, world.log, world.ring, peers=[peer])
    assert report.decision == "inconsistent" and "split_view" in _kinds(report)
    # the witness, shown the fork after cosigning the original, refuses it
    from inspectorate.ledger._witness import witness_log

    answer = witness_log(fork, world.root / "w1.key", world.ring, world.root / "w1.state")
    assert answer.cosig is None and "consistent" in (answer.refusal or "")


def test_witness_refuses_rollback_and_accepts_growth(world: World) -> None:
    world.stream("s1.jsonl", nonce="n1")
    assert world.cosign() is None
    world.stream("s2.jsonl", nonce="n2")
    assert world.cosign() is None  # consistent growth: cosigned
    sths = read_jsonl(world.log / STHS)
    _write_lines(world.log / STHS, [s for s in sths if s["size"] <= 3])
    refusal = world.cosign()
    assert refusal is not None and "rollback" in refusal


def test_key_used_on_two_machines(world: World) -> None:
    a = world.signer()
    world.stream("s1.jsonl", nonce="n1", signer=a)
    clone = world.signer()  # the same host key copied to another machine
    clone.machine = {"machine_id": "f" * 32, "boot_id": "other-boot"}
    world.stream("s2.jsonl", nonce="n2", signer=clone)
    world.cosign()
    report = verify_signed(world.root / "s1.jsonl", world.log, world.ring)
    assert report.decision == "inconsistent" and "key_reuse" in _kinds(report)


def test_key_used_on_two_boots_at_once(world: World) -> None:
    """The clone also fakes /etc/machine-id; two boots signing at overlapping times remain."""
    a, clone = world.signer(), world.signer()
    clone.machine = dict(a.machine, boot_id="another-boot")
    from inspectorate.capture._chain_writer import ChainWriter

    with (
        ChainWriter(world.root / "s1.jsonl", on_append=a.observe) as w1,
        ChainWriter(world.root / "s2.jsonl", on_append=clone.observe) as w2,
    ):
        for i in range(4):
            w1.append({"kind": "start" if i == 0 else "sample", "nonce": "n1", "i": i})
            w2.append({"kind": "start" if i == 0 else "sample", "nonce": "n2", "i": i})
        w1.append({"kind": "stop"})
        w2.append({"kind": "stop"})
    world.cosign()
    report = verify_signed(world.root / "s1.jsonl", world.log, world.ring)
    assert "key_reuse" in _kinds(report)


def test_head_signed_by_another_enrolled_host(world: World) -> None:
    """host-b's key signing heads that claim to be host-a's: provenance fails."""
    b = world.signer("host-b")
    b.key.id = "host-a"  # claims host-a, key is host-b's
    world.stream("sensor.jsonl", signer=b)
    world.cosign()
    report = verify_signed(world.root / "sensor.jsonl", world.log, world.ring)
    assert report.decision == "inconsistent" and "provenance" in _kinds(report)


def test_unclosed_stream_is_unverifiable(world: World) -> None:
    stream = world.stream("sensor.jsonl")
    leaves = read_jsonl(world.log / LEAVES)
    # as if the sensor had been killed before its stop record was signed
    _write_lines(stream, read_jsonl(stream)[:-1])
    _write_lines(world.log / LEAVES, leaves[:-1])
    _write_lines(world.log / STHS, [s for s in read_jsonl(world.log / STHS) if s["size"] < len(leaves)])
    world.cosign()
    report = verify_signed(stream, world.log, world.ring)
    assert report.decision == "unverifiable" and _kinds(report) == {"unclosed"}


def test_rewritten_history_fails_the_verifiers_consistency_check(world: World) -> None:
    """Same size as before, but an earlier leaf replaced (re-signed with the stolen host
    key even): the verifier's remembered root is not a prefix of the log any more."""
    world.stream("s1.jsonl", nonce="n1")
    world.cosign()
    state = world.root / "v.json"
    assert verify_signed(None, world.log, world.ring, state=state).decision == "consistent"
    leaves = read_jsonl(world.log / LEAVES)
    leaves[2] = world.keys["host-a"].sign("head", dict(leaves[2], t=0.5))
    _write_lines(world.log / LEAVES, leaves)
    report = verify_signed(None, world.log, world.ring, state=state)
    assert report.decision == "inconsistent" and "split_view" in _kinds(report)
    assert any("extension" in p.message for p in report.problems)


def test_a_torn_last_line_is_ignored_and_a_missing_stream_is_bad_input(world: World) -> None:
    import pytest

    from inspectorate.errors import InputError

    stream = world.stream("sensor.jsonl")
    world.cosign()
    with stream.open("ab") as f:
        f.write(b'{"kind": "sample", "t": 9')  # a writer killed mid-record
    assert verify_signed(stream, world.log, world.ring).decision == "consistent"
    with pytest.raises(InputError, match="no such stream"):
        verify_signed(world.root / "absent.jsonl", world.log, world.ring)
