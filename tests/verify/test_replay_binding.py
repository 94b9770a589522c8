"""A replay binds to a phase only through weights the checkpoint watcher saw written
during it (verify/_recomputed.observe, bind)."""

from __future__ import annotations

import pytest

from inspectorate.capture._ckpt_watch import Ingress, WatchLog
from inspectorate.verify._evidence import Claim
from inspectorate.verify._recomputed import PhaseWatch, bind, collective_ingress, observe
from inspectorate.verify._registry import Finding

CKPTS = [
    {"step": 0, "file": "ckpt_000000.pt", "weights_sha256": "w0"},
    {"step": 4, "file": "ckpt_000004.pt", "weights_sha256": "w4"},
    {"step": 9, "file": "ckpt_000009.pt", "weights_sha256": "w9"},
]


INSIDE = [{"pid": 7, "comm": "python", "in_workload": True}]
QUIET = Ingress(90.0, [90.0, 200.0], [0.0, 100.0])  # 100 B received over the run: ambient chatter


def _seen(
    *writes: tuple[float, str, str],
    problems: list[str] | None = None,
    writers: list | None = INSIDE,
    ingress: Ingress | None = QUIET,
) -> WatchLog:
    rows = [{"kind": "written", "t": t, "path": path, "weights_sha256": w} for t, path, w in writes]
    if writers is not None:
        rows = [{**r, "writers": writers} for r in rows]
    checked = "fanotify" if writers is not None else "unchecked: fanotify_init failed"
    return WatchLog(rows, problems or [], True, checked, ingress)


def _honest() -> WatchLog:
    return _seen(
        *((100.0 + 10 * i, f"claims/p/{c['file']}", c["weights_sha256"]) for i, c in enumerate(CKPTS))
    )


def _watch(log: WatchLog | None) -> PhaseWatch:
    return PhaseWatch("p", 95.0, 140.0, log)


def _replay() -> Finding:
    claim = {
        "n_params": 1000,
        "start": "seed_init",
        "start_checked": True,
        "final_weights_sha256": "w9",
        "tokens": 4096,
        "checkpoints": CKPTS,
    }
    return Finding("training_replay", 0.1, "consistent", {"claim": claim}, basis=("replay",))


CLAIM = Claim(label="pretrain:tiny", activity="pretrain", op="training", size="tiny", n_params=1000)


def test_weights_seen_written_in_the_phase_bind_the_replay():
    found = bind(_replay(), CLAIM, 4096, set(), watch=_watch(_honest()))
    assert found.decision == "consistent"
    assert found.evidence["settles"] == ["p1_op_type", "p2_model_size", "p3_finetune"]
    observed = found.evidence["observed"]
    assert observed["bound"] and observed["problems"] == [] and observed["checkpoints_seen"] == 3
    assert observed["writers"] == {"checked": True}
    # 2 checkpoints after the start, 1 bit a parameter each: 250 B the relay needs, 100 B came in
    assert observed["ingress"]["relay_needs_b"] == 250.0 and observed["ingress"]["received_b"] == 100.0


@pytest.mark.parametrize(
    ("log", "needle"),
    [
        (_seen(), "3 of 3 claimed checkpoints were never seen written on this host"),
        (
            _seen((100.0, "claims/p/ckpt_000000.pt", "w0"), (110.0, "elsewhere/a.pt", "w4")),
            "1 of 3 claimed checkpoints were never seen written",
        ),
        (
            _seen(*((10.0 + i, f"claims/p/{c['file']}", c["weights_sha256"]) for i, c in enumerate(CKPTS))),
            "3 of 3 claimed checkpoints were seen written only outside the phase",
        ),
        (
            _seen((120.0, "a", "w0"), (110.0, "b", "w4"), (130.0, "c", "w9")),
            "seen written out of step order",
        ),
        (
            _seen(
                (100.0, "claims/p/a", "w0"),
                (110.0, "claims/p/b", "w4"),
                (120.0, "claims/p/c", "w9"),
                (125.0, "claims/p/true.pt", "wX"),  # the phase's own weights, not in the claim
            ),
            "1 other weight files written to claims/p/ during the phase",
        ),
        (_seen(problems=["sensor_ckpt.jsonl: hash chain broken at record 3"]), "hash chain broken"),
    ],
)
def test_weights_not_seen_in_the_phase_make_the_replay_inconsistent(log, needle):
    found = bind(_replay(), CLAIM, 4096, set(), watch=_watch(log))
    assert found.decision == "inconsistent" and found.score == 1.0
    assert any(needle in b for b in found.evidence["binding"]), found.evidence["binding"]


def test_without_a_watcher_stream_a_replay_settles_nothing():
    found = bind(_replay(), CLAIM, 4096, set(), watch=_watch(None))
    assert found.decision == "consistent" and found.evidence["settles"] == []
    assert "cannot be tied to weights this host wrote" in found.evidence["observed"]["reason"]


def test_a_claim_without_checkpoint_fingerprints_cannot_bind():
    rec = _replay()
    rec.evidence["claim"].pop("checkpoints")
    assert observe(rec.evidence["claim"], _watch(_honest()))["problems"] == [
        "the replayed claim lists no checkpoint fingerprints to bind"
    ]


def _ingress(received: float) -> Ingress:
    # by the last checkpoint's write (t=120) ``received`` bytes had arrived; more came later
    return Ingress(90.0, [90.0, 119.0, 120.5, 200.0], [0.0, received / 2, received, received + 1e9])


@pytest.mark.parametrize(("received", "bound"), [(249.0, True), (250.0, False), (5e6, False)])
def test_ingress_that_could_carry_the_checkpoints_leaves_the_binding_open(received, bound):
    """The relay's bytes must cross the host's NIC after the challenge and before the
    last claimed checkpoint is written; bytes after it do not count."""
    log = _seen(
        *((100.0 + 10 * i, f"claims/p/{c['file']}", c["weights_sha256"]) for i, c in enumerate(CKPTS))
    )
    log = WatchLog(log.written, [], True, "fanotify", _ingress(received))
    found = bind(_replay(), CLAIM, 4096, set(), watch=_watch(log))
    assert found.decision == "consistent"  # never a flag: honest hosts may receive bytes
    assert bool(found.evidence["settles"]) is bound
    if not bound:
        reason = found.evidence["observed"]["reason"]
        assert f"could have been relayed in (ingress {received:.0f} B >= 250 B)" in reason


def test_without_receive_counters_the_binding_stays_open():
    log = _seen(
        *((100.0 + 10 * i, f"claims/p/{c['file']}", c["weights_sha256"]) for i, c in enumerate(CKPTS)),
        ingress=None,
    )
    found = bind(_replay(), CLAIM, 4096, set(), watch=_watch(log))
    assert found.evidence["settles"] == []
    assert "no receive counters" in found.evidence["observed"]["reason"]


def test_a_multi_host_job_s_collectives_explain_its_ingress_and_one_host_s_do_not():
    c = {"world_size": 4, "n_params": 1000, "steps": 10}
    assert collective_ingress(c, hosts=1) == 0.0  # ranks of one host all-reduce over loopback
    # 2 ranks here, each receiving 2(W-1)/W of 4 kB a step for 10 steps, +10% framing
    assert collective_ingress(c, hosts=2) == pytest.approx(10 * 2 * 1.5 * 4000 * 1.10)


def _writes(writers: list) -> WatchLog:
    return _seen(
        *((100.0 + 10 * i, f"claims/p/{c['file']}", c["weights_sha256"]) for i, c in enumerate(CKPTS)),
        writers=writers,
    )


def test_a_checkpoint_written_by_a_process_outside_the_workload_is_inconsistent():
    outside = [{"pid": 4242, "comm": "rsync", "in_workload": False}]
    found = bind(_replay(), CLAIM, 4096, set(), watch=_watch(_writes(outside)))
    assert found.decision == "inconsistent"
    assert any(
        "outside the workload's tree (first: ckpt_000000.pt by pid 4242 (rsync))" in b
        for b in found.evidence["binding"]
    )


def test_an_unseen_or_exited_writer_leaves_the_binding_open_and_an_unchecked_host_says_so():
    gone = bind(
        _replay(), CLAIM, 4096, set(), watch=_watch(_writes([{"pid": 9, "comm": None, "in_workload": None}]))
    )
    assert gone.decision == "consistent" and gone.evidence["settles"] == []
    assert (
        "the writer of 3 claimed checkpoints was not seen or had exited"
        in gone.evidence["observed"]["reason"]
    )
    unchecked = bind(_replay(), CLAIM, 4096, set(), watch=_watch(_writes(None)))
    assert unchecked.evidence["settles"]  # fanotify unavailable: bound on the rest, and said
    assert "writer not checked on this host" in unchecked.evidence["observed"]["writers"]["note"]


def test_an_event_read_late_by_a_starved_watcher_still_binds_to_its_phase():
    """The watcher last found its queue empty at 138 and read three events at 143, past
    the phase's end (140) plus slack: the writes lie in [138, 143], which meets the phase."""
    rows = [
        {"t": 100.0, "path": "claims/p/a", "weights_sha256": "w0"},
        {"t": 143.0, "queued_after": 138.0, "path": "claims/p/b", "weights_sha256": "w4"},
        {"t": 143.0, "queued_after": 138.0, "path": "claims/p/c", "weights_sha256": "w9"},
    ]
    log = WatchLog([{**r, "kind": "written", "writers": INSIDE} for r in rows], [], True, "fanotify", QUIET)
    assert observe(_replay().evidence["claim"], _watch(log))["bound"]
    late = [{**r, "queued_after": 141.5} if "queued_after" in r else r for r in rows]
    log = WatchLog([{**r, "kind": "written", "writers": INSIDE} for r in late], [], True, "fanotify", QUIET)
    assert (
        "seen written only outside the phase"
        in observe(_replay().evidence["claim"], _watch(log))["problems"][0]
    )
