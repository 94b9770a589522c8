"""Compute relayed to a host process outside the capture (``capture._peers``).

The sensor's escape watch records every process outside the workload that holds the
other end of one of its channels (unix socket, TCP/UDP to a host address, FIFO or
pipe) and samples that process's cumulative CPU about once a second. A phase's relayed
CPU is, per peer, the sum of the increments between consecutive samples whose later
sample falls in the phase (samples are written only when the value moves, and the
audit runs every second, so a rise is dated to within a second of its sample).

``compute`` reads it: CPU the claim must explain that the workload's tree never shows.
Relayed CPU above ``relay_allowance`` makes a phase that ``compute`` would pass
``unverifiable``: the helper's CPU cannot be attributed to the workload's requests (a
busy shared daemon serves others too), so the claim is neither confirmed nor refuted;
capturing the helper too (its CPU is then the tree's) would settle it. It is not
``inconsistent``, even for an idle claim: the workload itself did stay idle, and a
system daemon the workload merely logs to would otherwise fail honest runs on a busy
host. Under the default ``strict`` policy an unverifiable phase is not certified.
"""

from __future__ import annotations

from typing import Any

from inspectorate.verify._calibration import Calibration
from inspectorate.verify._evidence import PhaseEvidence

# A woken daemon (journald taking a log line, the label channel's peer) spends a few
# scheduler ticks (10 ms each); 0.1 CPU-s covers that and the audit's one-second dating
# of a rise at a phase edge.
RELAY_FLOOR_S = 0.1
VIA = {"unix": "unix socket", "tcp": "TCP", "udp": "UDP", "fifo": "pipe/FIFO"}


def relay_allowance(ev: PhaseEvidence, cal: Calibration) -> float:
    """CPU-seconds all relay peers together may burn in a phase: one idle process's
    allowance (``idle_cores``, 3x an honest idle tree) over the phase, plus
    ``RELAY_FLOOR_S``. Summed over peers, so splitting the work across helpers buys
    nothing; not scaled by the workload's memory holders (that is the workload's own
    idle runtime, not a helper's)."""
    return cal.idle_cores * max(ev.t1 - ev.t0, 0.0) + RELAY_FLOOR_S


def relayed(watch: dict[str, Any] | None, t0: float, t1: float) -> list[dict[str, Any]]:
    """Relay peers connected by ``t1`` and not gone before ``t0``, with the CPU each
    burned in [t0, t1] (``cpu_s``), largest first. ``inherited``: every channel to it
    is one the capture wrapper holds too (its own stdio, handed to the command)."""
    out = []
    for pid, peer in ((watch or {}).get("relays") or {}).items():
        channels = [c for c in peer["channels"] if c["t"] <= t1]
        if not channels or (peer["gone"] is not None and peer["gone"] < t0):
            continue
        samples = peer["samples"]
        cpu = sum(max(b[1] - a[1], 0.0) for a, b in zip(samples, samples[1:]) if t0 < b[0] <= t1)
        own = [c for c in channels if not c.get("inherited")]
        first = (own or channels)[0]
        out.append(
            {
                "pid": pid,
                "comm": first.get("comm"),
                "via": first.get("via"),
                "address": first.get("address"),
                "cpu_s": round(cpu, 3),
                "inherited": not own,
            }
        )
    return sorted(out, key=lambda p: -p["cpu_s"])


def relay_evidence(
    ev: PhaseEvidence, watch: dict[str, Any] | None, cal: Calibration
) -> dict[str, Any] | None:
    """The phase's relay peers for ``compute``'s evidence (None: there are none), and
    under ``reason`` the sentence naming the busiest one when together they burned
    more than ``relay_allowance`` (absent: quiet peers, recorded, changing nothing)."""
    found = relayed(watch, ev.t0, ev.t1)
    if not found:
        return None
    peers = [p for p in found if not p.pop("inherited")]
    stdio = [p for p in found if p not in peers]
    total, allowed = sum(p["cpu_s"] for p in peers), relay_allowance(ev, cal)
    out: dict[str, Any] = {"relay_peers": peers[:10], "relay_cpu_s": total, "relay_allowance_s": allowed}
    if stdio:  # shown, not judged: the launcher reading the capture's stdout is not the workload's
        out["stdio_peers"] = stdio[:10]
    if total > allowed:
        top = peers[0]
        where = f"{VIA.get(str(top['via']), top['via'])} {top['address'] or '(unnamed)'}"
        out["reason"] = (
            f"work may have been relayed to pid {top['pid']} ({top['comm']}) outside the capture over "
            f"{where}: {top['cpu_s']:.1f} CPU-s in this phase"
            + (f" ({total:.1f} CPU-s across {len(peers)} peers)" if len(peers) > 1 else "")
        )
    return out
