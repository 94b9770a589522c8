"""The fabric's wiring: one network namespace per "host", a veth point-to-point mesh.

Why a mesh and not a bridge: a veth pair is one link with two ends whose kernel
counters are exact (what one end transmits the other receives; nothing is dropped or
duplicated on the way), so every link gives a conservation law per direction, and
each interface names the one peer it leads to. A bridge would only give one sum.

Addressing: host ``i`` owns ``169.254.X.(i+1)``; the same /32 sits on every one of its
links, with a /32 route to each peer over the direct link. Gloo binds to the address of
the interface named by ``GLOO_SOCKET_IFNAME`` (any link: all carry the host address)
and traffic to peer ``j`` leaves by ``p<j>``. IPv6 is off inside the namespaces so no
neighbour discovery adds bytes of its own. Nothing here touches the root namespace:
no route, bridge or address of this machine changes.
"""

from __future__ import annotations

import ipaddress
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from inspectorate.capture._isolate import _ip
from inspectorate.errors import InputError

MAX_HOSTS = 16


def link_name(peer: int) -> str:
    """Host-side name of the interface that leads to ``peer`` (the same in every namespace)."""
    return f"p{peer}"


@dataclass
class Mesh:
    """``n`` named namespaces joined pairwise by veth links."""

    tag: str
    n: int
    prefix: str = ""  # "169.254.X."
    created: list[str] = field(default_factory=list)

    def ns(self, i: int) -> str:
        return f"insp-{self.tag}-h{i}"

    def path(self, i: int) -> Path:
        return Path("/run/netns") / self.ns(i)

    def address(self, i: int) -> str:
        return f"{self.prefix}{i + 1}"

    def links(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.n) for j in range(i + 1, self.n)]

    @classmethod
    def create(cls, tag: str, n: int) -> Mesh:
        if not 2 <= n <= MAX_HOSTS:
            raise InputError(f"--hosts must be 2..{MAX_HOSTS}")
        mesh = cls(tag, n, _free_prefix())
        try:
            for i in range(n):
                _ip("netns", "add", mesh.ns(i))
                mesh.created.append(mesh.ns(i))
                _sysctl(mesh.ns(i), "net/ipv6/conf/all/disable_ipv6", "1")
                _sysctl(mesh.ns(i), "net/ipv6/conf/default/disable_ipv6", "1")
                _ip("-n", mesh.ns(i), "link", "set", "lo", "up")
            for i, j in mesh.links():
                a, b = link_name(j), link_name(i)
                _ip("link", "add", a, "netns", mesh.ns(i), "type", "veth", "peer", b, "netns", mesh.ns(j))
                for host, dev, peer in ((i, a, j), (j, b, i)):
                    _ip("-n", mesh.ns(host), "addr", "add", f"{mesh.address(host)}/32", "dev", dev)
                    _ip("-n", mesh.ns(host), "link", "set", dev, "up")
                    _ip("-n", mesh.ns(host), "route", "add", f"{mesh.address(peer)}/32", "dev", dev)
        except BaseException:
            mesh.remove()
            raise
        return mesh

    def remove(self) -> None:
        """Delete the namespaces (their veth ends go with them)."""
        for name in self.created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.created = []


def _sysctl(ns: str, key: str, value: str) -> None:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, "sh", "-c", f"echo {value} > /proc/sys/{key}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise InputError(f"cannot set {key} in namespace {ns}: {proc.stderr.strip() or proc.returncode}")


def _free_prefix() -> str:
    """A link-local /24 that no interface of this machine uses (169.254.169.x skipped)."""
    text = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    used = [ipaddress.ip_interface(f.split()[3]).network for f in text.splitlines() if len(f.split()) > 3]
    rng = random.SystemRandom()
    for _ in range(200):
        third = rng.choice([x for x in range(1, 255) if x != 169])
        net = ipaddress.IPv4Network(f"169.254.{third}.0/24")
        if not any(net.overlaps(u) for u in used):
            return f"169.254.{third}."
    raise InputError("no free link-local /24 for the fabric")
