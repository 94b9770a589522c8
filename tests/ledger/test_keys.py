"""Keys and the keyring: provenance decided by enrolment, never by what a record says."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspectorate.errors import InputError
from inspectorate.ledger import enrol, generate_key, load_key, load_keyring, save_key
from signed_world import World


def test_key_round_trip_and_no_silent_overwrite(tmp_path: Path) -> None:
    key = generate_key("host-x", "host")
    save_key(key, tmp_path / "k.json")
    assert (tmp_path / "k.json").stat().st_mode & 0o777 == 0o600
    again = load_key(tmp_path / "k.json")
    assert again.public_hex == key.public_hex and again.role == "host"
    with pytest.raises(InputError, match="--force"):
        save_key(generate_key("host-x", "host"), tmp_path / "k.json")


def test_one_key_enrolled_for_two_hosts_is_refused(world: World) -> None:
    pub = world.keys["host-a"].public_hex
    with pytest.raises(InputError, match="two hosts"):
        enrol(world.ring, "host-c", "host", pub)
    assert "host-c" not in load_keyring(world.ring).by_id  # the file was left as it was


def test_signatures_check_key_role_and_domain(world: World) -> None:
    ring = world.keyring
    head = world.keys["host-a"].sign("head", {"host": "host-a", "count": 1})
    assert ring.verify("head", head, "host-a", "host") is None
    assert "bad head signature" in (ring.verify("head", dict(head, count=2), "host-a", "host") or "")
    assert "bad head signature" in (ring.verify("head", head, "host-b", "host") or "")  # another host's key
    assert "not enrolled" in (ring.verify("head", head, "host-z", "host") or "")
    assert "enrolled as host" in (ring.verify("sth", head, "host-a", "log") or "")
    assert ring.verify("sth", head, "host-a", "host") is not None  # a head is never a tree head


def test_malformed_keyring_is_one_line_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "ring.json"
    bad.write_text('{"schema": "inspectorate.keyring/1", "keys": [{"id": "a", "role": "host"}]}')
    with pytest.raises(InputError, match=r"keys\[0\] malformed"):
        load_keyring(bad)
    bad.write_text("[]")
    with pytest.raises(InputError, match="JSON object"):
        load_keyring(bad)
