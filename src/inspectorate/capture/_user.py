"""Run the workload as another user: what a root workload could do, it then cannot.

A workload running as root beside a root sensor can kill the sensor, write the
cgroup's ``cgroup.procs`` (leave what the sensor reads), ptrace or signal other root
processes, read the host's signing key and re-chain the streams the sensor wrote. The
escape watch and ``integrity`` *detect* the first two; an unprivileged workload cannot
do any of them. ``capture --user NAME|UID`` (``--user sudo``: the user who ran ``sudo``, from
``SUDO_UID``) drops to that user in the child, after it joined the cgroup and the
namespace and before ``execve``.

The run directory is made so the workload can add its own evidence but not touch the
verifier's: the directory is owned by root, group-writable by the workload's group and
sticky (like ``/tmp``: a user may create files and remove only its own), every file the
sensor and the wrapper write exists, root-owned and 0644, before the workload starts
(no file can be squatted), and ``claims/`` belongs to the workload.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from inspectorate.errors import InputError


@dataclass(frozen=True)
class Account:
    uid: int
    gid: int
    name: str
    home: str

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with HOME, USER and LOGNAME of this account (tools read them)."""
        return {**base, "HOME": self.home, "USER": self.name, "LOGNAME": self.name}


def resolve_user(spec: str | None, environ: dict[str, str] | None = None) -> Account | None:
    """The account the workload runs as: ``spec`` (a name or a numeric uid; ``sudo``: the
    user behind ``sudo``, from ``SUDO_UID``), else None (it keeps the caller's identity:
    never changed behind the caller's back). InputError for an unknown user, for ``sudo``
    outside sudo, or for any user when the caller is not root."""
    env = os.environ if environ is None else environ
    if spec is None:
        return None
    chosen = env.get("SUDO_UID") if spec == "sudo" else spec
    if not chosen:
        raise InputError("--user sudo: SUDO_UID is not set (not run through sudo)")
    try:
        entry = pwd.getpwuid(int(chosen)) if chosen.isdigit() else pwd.getpwnam(chosen)
    except (KeyError, ValueError):
        raise InputError(f"--user: no such user {chosen!r}") from None
    if entry.pw_uid == os.geteuid():
        return None  # already that user: nothing to drop
    if os.geteuid() != 0:
        raise InputError(f"--user {chosen}: only root can run the workload as another user")
    return Account(entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir or "/")


def become(account: Account) -> None:
    """In the forked child, before ``execve``: no supplementary groups, the account's gid,
    then its uid (all three, in this order: after setuid the others are refused)."""
    os.setgroups([])
    os.setgid(account.gid)
    os.setuid(account.uid)
    if os.getuid() != account.uid or os.geteuid() != account.uid:
        raise OSError(f"could not drop to uid {account.uid}")


def share_run_dir(
    out: Path, account: Account, root_files: tuple[str, ...], owned_dirs: tuple[str, ...]
) -> None:
    """``out`` root-owned, sticky and writable by the account's group; ``root_files``
    created root-owned 0644 if missing; ``owned_dirs`` created and handed to the account.
    The directory's parents must let the account through: checked, never changed."""
    for parent in out.parents:
        if not _can_search(parent.stat(), account):
            raise InputError(
                f"--user {account.name}: it cannot reach the run directory through {parent} "
                "(no search permission); choose an --out it can reach"
            )
    os.chown(out, 0, account.gid)
    os.chmod(out, 0o1775)
    for name in root_files:
        path = out / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
        os.chown(path, 0, 0)
        os.chmod(path, 0o644)
    for name in owned_dirs:
        path = out / name
        path.mkdir(exist_ok=True)
        os.chown(path, account.uid, account.gid)


def _can_search(st: os.stat_result, account: Account) -> bool:
    if st.st_uid == account.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == account.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)
