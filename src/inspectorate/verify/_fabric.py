"""Cross-host checks of a fabric run: what N hosts' evidence says together that no one
host's evidence can (``inspectorate verify-fabric FABRIC``; docs/fabric.md).

One registered function per check (``@fabric_check``), each carrying its scope:

* ``host``: answerable from one host's directory alone (its signed stream, its claims
  agreeing with each other and with the manifest): the per-host evidence baseline;
* ``fabric``: needs several hosts' signed counters or the verifier's logs at once.

What the checks rest on, and why a forger cannot bend it: every NIC counter read here
comes from a sensor stream whose heads the host key signed into a witnessed log, under
this fabric's challenge (``host_signatures``). A forger who drops a host or invents one
rewrites the manifest and every prover file to match, but the surviving hosts' signed
counters still show the bytes they exchanged with the dropped host, the dropped host's
key still signed heads under this challenge, and an invented host has no enrolled key
and no bytes on its peers' links.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.verify._fabric_evidence import DTYPE_BYTES, FabricEvidence, load_fabric
from inspectorate.verify._registry import CONSISTENT, INCONSISTENT, UNVERIFIABLE, Finding, finding

VERDICT_SCHEMA = "inspectorate.fabric_verdict/1"
# veth counters are exact at both ends and the capture samples every namespace after the
# job went quiet, so an honest link conserves to the byte (measured: 0 B on every link);
# the slack only covers a stray ARP exchange between two hosts' last samples
CONSERVE_ABS_B = 2048
CONSERVE_REL = 1e-4
# an interface "carried traffic" above this (connection set-up alone is a few KB)
TRAFFIC_B = 16384
# ring all-reduce: each rank sends 2(W-1)/W x gradient bytes per step; on top, DDP's
# start-up broadcast of the weights (<= (W-1) x G from rank 0) plus rendezvous and TCP
# framing; measured overhead 0.7-3% (docs/fabric.md), band set wider than that
VOLUME_LOW, VOLUME_HIGH = 0.97, 1.06


@dataclass(frozen=True)
class FabricCheck:
    name: str
    scope: str  # "host" or "fabric"
    catches: str
    fn: Callable[[FabricEvidence], Finding]


FABRIC_CHECKS: dict[str, FabricCheck] = {}


def fabric_check(
    name: str, *, scope: str, catches: str
) -> Callable[[Callable[..., Finding]], Callable[..., Finding]]:
    def register(fn: Callable[[FabricEvidence], Finding]) -> Callable[[FabricEvidence], Finding]:
        if scope not in ("host", "fabric"):
            raise ValueError(f"scope must be host or fabric, got {scope!r}")
        FABRIC_CHECKS[name] = FabricCheck(name, scope, catches, fn)
        return fn

    return register


# ------------------------------------------------------------------------ host scope


@fabric_check(
    "host_signatures", scope="host", catches="unsigned, re-chained, truncated or copied sensor streams"
)
def host_signatures(ev: FabricEvidence) -> Finding:
    """Each host's sensor stream against its signed, witnessed heads, answering this
    fabric's challenge for that host, signed by the key the manifest names; no two
    hosts signed by one key."""
    from inspectorate.ledger import verify_signed

    per_host: dict[str, Any] = {}
    signers: dict[str, str] = {}
    bad, unsure = [], []
    logs = _logs_by_signer(ev)
    for h in ev.hosts:
        stream = h.dir / "sensor.jsonl"
        # the verifier's ledger, not the manifest's say, decides which log is the host's
        log = logs.get(str(h.entry.get("host_key")), h.log)
        if not stream.is_file() or not (log / "leaves.jsonl").is_file():
            bad.append(f"{h.name}: no sensor stream or no log")
            continue
        challenge = None if ev.challenge is None else f"{ev.challenge}:h{h.index}"
        report = verify_signed(stream, log, ev.keyring, challenge=challenge)
        per_host[h.name] = {"decision": report.decision, "signer": report.host, "heads": report.heads}
        if report.decision == INCONSISTENT or report.heads == 0:
            bad.append(f"{h.name}: " + "; ".join(report.reasons() or ["no signed head for the stream"]))
        elif report.decision == UNVERIFIABLE:
            unsure.append(f"{h.name}: " + "; ".join(report.reasons()))
        if report.host is not None and report.host != h.entry.get("host_key"):
            bad.append(
                f"{h.name}: stream signed by {report.host!r}, manifest names {h.entry.get('host_key')!r}"
            )
        if report.host is not None and report.host in signers:
            bad.append(f"{h.name} and {signers[report.host]} are one signer ({report.host}): a copied stream")
        if report.host is not None:
            signers.setdefault(report.host, h.name)
    if ev.challenge is None:
        unsure.append("freshness not checked: no challenge")
    decision = INCONSISTENT if bad else UNVERIFIABLE if unsure else CONSISTENT
    return finding(
        "host_signatures",
        1.0 if bad else 0.0,
        decision,
        basis=["sensor"],
        hosts=per_host,
        problems=bad + unsure,
    )


@fabric_check(
    "claims_agree", scope="host", catches="a host whose own files disagree on world size, rank or model"
)
def claims_agree(ev: FabricEvidence) -> Finding:
    """Each host's labels and step records name the manifest's world size and one model."""
    problems = []
    world = ev.claimed_world
    if world != len(ev.hosts):
        problems.append(f"manifest world_size {world} but {len(ev.hosts)} hosts listed")
    for h in ev.hosts:
        for what, seen in (("labels", h.label_world), ("steps", h.step_world)):
            if seen and seen != {world}:
                problems.append(f"{h.name}: {what} claim world size {sorted(seen)}, manifest {world}")
        if len(h.n_params) > 1:
            problems.append(f"{h.name}: several model sizes claimed {sorted(h.n_params)}")
    return finding(
        "claims_agree", 1.0 if problems else 0.0, INCONSISTENT if problems else CONSISTENT, problems=problems
    )


# ------------------------------------------------------------------------ fabric scope


@fabric_check(
    "link_conservation", scope="fabric", catches="a hidden peer's link, an invented link, relabelled links"
)
def link_conservation(ev: FabricEvidence) -> Finding:
    """On every claimed link, what one end's signed counters say it sent the other end's
    say it received (both directions); every interface that carried traffic is on a
    claimed link; every claimed link's interfaces exist."""
    problems: list[str] = []
    cut_short: list[str] = []
    links: dict[str, Any] = {}
    used: set[tuple[int, str]] = set()
    late = _late_sensors(ev)
    for a, a_if, b, b_if in ev.links():
        ha, hb = ev.host(a), ev.host(b)
        if ha is None or hb is None:
            problems.append(f"link h{a}.{a_if} - h{b}.{b_if} names a host the manifest lacks")
            continue
        if (a, a_if) in used or (b, b_if) in used:
            problems.append(f"an interface is claimed for two links (h{a}.{a_if} or h{b}.{b_if})")
        used |= {(a, a_if), (b, b_if)}
        if a_if not in ha.net or b_if not in hb.net:
            problems.append(f"link h{a}.{a_if} - h{b}.{b_if}: no such interface in the signed counters")
            continue
        (a_rx, a_tx), (b_rx, b_tx) = ha.net[a_if], hb.net[b_if]
        gaps = (a_tx - b_rx, b_tx - a_rx)
        links[f"h{a}.{a_if}-h{b}.{b_if}"] = {
            "a_tx": a_tx,
            "b_rx": b_rx,
            "b_tx": b_tx,
            "a_rx": a_rx,
            "gaps": gaps,
        }
        for (sent, got), gap, ends in zip(((a_tx, b_rx), (b_tx, a_rx)), gaps, ((a, b), (b, a)), strict=True):
            if abs(gap) > CONSERVE_ABS_B + CONSERVE_REL * max(sent, got):
                problem = f"link h{a}.{a_if} - h{b}.{b_if}: sent {sent} B, received {got} B"
                short = ends[1] if gap > 0 else ends[0]  # the end that counted less
                (cut_short if short in late else problems).append(problem)
    stray = _unclaimed(ev, used)
    problems += [
        f"h{i}.{iface} carried {rx + tx} B on no claimed link (a peer not in the fabric)"
        for i, iface, rx, tx in stray
    ]
    if not any(h.sensor_ok for h in ev.hosts):
        return finding("link_conservation", 0.0, UNVERIFIABLE, problems=["no host has NIC counters"])
    if cut_short and not problems:  # the only gaps are on ends whose counters stopped early
        return finding(
            "link_conservation",
            0.0,
            UNVERIFIABLE,
            basis=["sensor"],
            links=links,
            problems=cut_short,
            late_sensors=[
                f"h{i}: its sensor's last reading precedes the end of the job's traffic" for i in late
            ],
        )
    return finding(
        "link_conservation",
        1.0 if problems else 0.0,
        INCONSISTENT if problems else CONSISTENT,
        basis=["sensor"],
        links=links,
        problems=problems + cut_short,
    )


def _late_sensors(ev: FabricEvidence) -> list[int]:
    """Hosts whose sensor's last namespace reading came before the ranks ended (a sensor
    starved past capture's wait): their counters may stop short of the last bytes, so a
    link that reads short at that end is not evidence of a hidden peer. Read from the
    signed sensor streams against the manifest's end of the ranks; without that time no
    host counts as late."""
    ended = ev.manifest.get("ranks_ended")
    if not isinstance(ended, (int, float)) or isinstance(ended, bool):
        return []
    return [h.index for h in ev.hosts if h.last_t is not None and h.last_t < ended]


def _unclaimed(ev: FabricEvidence, used: set[tuple[int, str]]) -> list[tuple[int, str, int, int]]:
    return [
        (h.index, iface, rx, tx)
        for h in ev.hosts
        for iface, (rx, tx) in sorted(h.net.items())
        if (h.index, iface) not in used and rx + tx > TRAFFIC_B
    ]


@fabric_check("world_size", scope="fabric", catches="a missing rank, an extra rank, a hidden or phantom host")
def world_size(ev: FabricEvidence) -> Finding:
    """The hosts that carried the job's traffic (by their signed counters) against the
    claimed world size: a listed host with no traffic is a missing rank; traffic to a
    peer no manifest host accounts for is an extra rank."""
    carried = sorted(h.name for h in ev.hosts if sum(rx + tx for rx, tx in h.net.values()) > TRAFFIC_B)
    used = {(a, a_if) for a, a_if, _, _ in ev.links()} | {(b, b_if) for _, _, b, b_if in ev.links()}
    extra_peers = sorted({iface for _, iface, _, _ in _unclaimed(ev, used)})
    seen = len(carried) + len(extra_peers)
    claimed = ev.claimed_world
    problems = [
        f"{h.name} is listed but carried no traffic (missing rank)" for h in ev.hosts if h.name not in carried
    ]
    if extra_peers:
        problems.append(
            f"traffic to {len(extra_peers)} peer(s) outside the fabric via {extra_peers} (extra rank)"
        )
    if claimed is not None and claimed != seen:
        problems.append(f"claimed world size {claimed}, traffic shows at least {seen} hosts")
    return finding(
        "world_size",
        1.0 if problems else 0.0,
        INCONSISTENT if problems else CONSISTENT,
        basis=["sensor"],
        claimed=claimed,
        carried=carried,
        extra_peers=extra_peers,
        problems=problems,
    )


@fabric_check("allreduce_volume", scope="fabric", catches="a misstated world size or model size")
def allreduce_volume(ev: FabricEvidence) -> Finding:
    """Each host's signed tx bytes against a ring all-reduce of the claimed model across
    the claimed world size for its claimed steps: 2(W-1)/W x G per step, G the gradient
    bytes (n_params x dtype size), within [VOLUME_LOW, VOLUME_HIGH] plus DDP's one-off
    weight broadcast ((W-1) x G)."""
    w = ev.claimed_world
    ratios, problems, missing = {}, [], []
    for h in ev.hosts:
        if w is None or w < 2 or h.steps is None or len(h.n_params) != 1 or h.grad_dtype not in DTYPE_BYTES:
            missing.append(
                f"{h.name}: needs claimed world size >= 2, step records, one n_params and a known dtype"
            )
            continue
        g = next(iter(h.n_params)) * DTYPE_BYTES[h.grad_dtype]
        expected = h.steps * 2 * (w - 1) / w * g
        tx = sum(t for _, t in h.net.values())
        ratio = tx / expected if expected else float("inf")
        high = VOLUME_HIGH + (w - 1) * g / expected
        ratios[h.name] = {"tx": tx, "expected": expected, "ratio": ratio, "band": [VOLUME_LOW, high]}
        if not VOLUME_LOW <= ratio <= high:
            problems.append(
                f"{h.name}: sent {tx} B, {ratio:.3f}x a ring all-reduce of the claimed model at W={w}"
            )
    if missing and not ratios:
        return finding("allreduce_volume", 0.0, UNVERIFIABLE, problems=missing)
    decision = INCONSISTENT if problems else UNVERIFIABLE if missing else CONSISTENT
    return finding(
        "allreduce_volume",
        1.0 if problems else 0.0,
        decision,
        basis=["sensor"],
        hosts=ratios,
        problems=problems + missing,
    )


@fabric_check(
    "unlisted_signers", scope="fabric", catches="a hidden host whose key signed under this fabric's challenge"
)
def unlisted_signers(ev: FabricEvidence) -> Finding:
    """Every log the verifier holds: a host key that signed heads answering this fabric's
    challenge but is not a manifest host took part unlisted."""

    if ev.challenge is None:
        return finding(
            "unlisted_signers", 0.0, UNVERIFIABLE, problems=["no challenge: cannot tell this fabric's heads"]
        )
    if not ev.ledger.is_dir():
        return finding("unlisted_signers", 0.0, UNVERIFIABLE, problems=[f"no ledger directory {ev.ledger}"])
    listed = {str(h.entry.get("host_key")) for h in ev.hosts}
    signers = {
        host: nonce for host, (_, nonce) in _ledger_heads(ev).items() if nonce.startswith(f"{ev.challenge}:")
    }
    extra = sorted(set(signers) - listed)
    problems = [f"{k} signed heads for {signers[k]} but is not in the fabric" for k in extra]
    return finding(
        "unlisted_signers",
        1.0 if problems else 0.0,
        INCONSISTENT if problems else CONSISTENT,
        basis=["sensor"],
        signers=sorted(signers),
        problems=problems,
    )


def _ledger_heads(ev: FabricEvidence) -> dict[str, tuple[Path, str]]:
    """Every host key with validly signed heads in the verifier's ledger: (its log, the
    nonce of its last head)."""
    from inspectorate.ledger import audit_log, load_keyring, open_log

    if not ev.ledger.is_dir():
        return {}
    ring, out = load_keyring(ev.keyring), {}
    for log in sorted(p.parent for p in ev.ledger.rglob("leaves.jsonl")):
        for _, head in audit_log(open_log(log), ring).heads:  # signature-checked heads only
            out[str(head.get("host"))] = (log, str(head.get("nonce", "")))
    return out


def _logs_by_signer(ev: FabricEvidence) -> dict[str, Path]:
    return {host: log for host, (log, _) in _ledger_heads(ev).items()}


# ------------------------------------------------------------------------ verdict


@dataclass
class FabricVerdict:
    root: str
    findings: list[tuple[FabricCheck, Finding]] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        decisions = {f.decision for _, f in self.findings}
        return str(
            INCONSISTENT
            if INCONSISTENT in decisions
            else UNVERIFIABLE
            if UNVERIFIABLE in decisions
            else CONSISTENT
        )

    def caught_by(self, scope: str | None = None) -> list[str]:
        return [c.name for c, f in self.findings if f.decision == INCONSISTENT and scope in (None, c.scope)]

    def to_text(self) -> str:
        lines = []
        for check, found in self.findings:
            problems = found.evidence.get("problems") or []
            head = f"{found.decision:>12}  {check.scope:<6} {check.name}"
            lines.append(head + (f": {problems[0]}" if problems else ""))
            lines += [f"{'':>21}{extra}" for extra in problems[1:4]]
        return "\n".join([*lines, f"fabric {self.outcome}"])

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": VERDICT_SCHEMA,
            "fabric": self.root,
            "outcome": self.outcome,
            "verdict": int(self.outcome == CONSISTENT),
            "checks": [{"scope": c.scope, **f.to_dict()} for c, f in self.findings],
        }


def verify_fabric(
    root: Path | str,
    *,
    keyring: Path | None = None,
    ledger: Path | None = None,
    challenge: str | None = None,
    scope: str | None = None,
) -> FabricVerdict:
    """Run every registered check (or only one scope's) over the fabric at ``root``."""
    ev = load_fabric(Path(root), keyring=keyring, ledger=ledger, challenge=challenge)
    verdict = FabricVerdict(str(root))
    for check in FABRIC_CHECKS.values():
        if scope is None or check.scope == scope:
            verdict.findings.append((check, check.fn(ev)))
    return verdict
