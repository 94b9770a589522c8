"""The witness: cosigns a log's tree head only if it extends the last one it cosigned.

Why a witness: the log operator sits on the prover's side, so it could show one
verifier one tree and another verifier a different one (a split view), or roll the log
back to an old state. A witness holds its own key and its own memory (``state``: the
last size and root it cosigned per log). It checks the tree head's signature against the
keyring, refuses a smaller tree, and demands an RFC 9162 consistency proof from what it
cosigned before: a forked or rewritten log can never get a second cosignature from the
same witness, and a verifier that requires one sees only the branch the witness saw.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.ledger._keys import Keyring, SigningKey
from inspectorate.ledger._merkle import ProofError, verify_consistency

COSIG_SCHEMA = "inspectorate.cosig/1"
WITNESS_STATE_SCHEMA = "inspectorate.witness-state/1"


@dataclass
class Cosigned:
    """The witness's answer: a cosignature, or the reason it refused."""

    cosig: dict[str, Any] | None
    refusal: str | None = None


class Witness:
    def __init__(self, key: SigningKey, keyring: Keyring, state_path: Path) -> None:
        if key.role != "witness":
            raise InputError(f"key {key.id!r} is a {key.role} key, not a witness key")
        self.key, self.keyring, self.state_path = key, keyring, state_path
        self.state: dict[str, dict[str, Any]] = _load_state(state_path)

    def cosign(self, sth: dict[str, Any], proof: list[bytes]) -> Cosigned:
        """Cosign ``sth`` if it is signed by its enrolled log key and ``proof`` shows it
        consistent with the last head this witness cosigned for that log."""
        log_id = str(sth.get("log"))
        bad = self.keyring.verify("sth", sth, log_id, "log")
        if bad is not None:
            return Cosigned(None, bad)
        try:
            size, root = int(sth["size"]), bytes.fromhex(str(sth["root"]))
        except (KeyError, TypeError, ValueError):
            return Cosigned(None, "tree head without a valid size and root")
        last = self.state.get(log_id)
        if last is not None:
            refusal = _refuse(last, size, root, proof)
            if refusal is not None:
                return Cosigned(None, refusal)
        body = {"schema": COSIG_SCHEMA, "witness": self.key.id, "log": log_id, "size": size}
        body.update(root=root.hex(), t=round(time.time(), 4))
        self.state[log_id] = {"size": size, "root": root.hex()}
        self._save()
        return Cosigned(self.key.sign("cosig", body))

    def _save(self) -> None:
        body = {"schema": WITNESS_STATE_SCHEMA, "logs": self.state}
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.state_path)


def _refuse(last: dict[str, Any], size: int, root: bytes, proof: list[bytes]) -> str | None:
    old_size, old_root = int(last["size"]), bytes.fromhex(last["root"])
    if size < old_size:
        return f"tree shrank: size {size} after cosigning size {old_size} (rollback)"
    try:
        ok = verify_consistency(old_size, size, old_root, root, proof)
    except ProofError as exc:
        return f"malformed consistency proof ({exc.reason})"
    if not ok:
        return f"not consistent with the cosigned tree of size {old_size} (split view or rewritten log)"
    return None


def _load_state(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        logs = data["logs"]
        if data.get("schema") != WITNESS_STATE_SCHEMA or not isinstance(logs, dict):
            raise ValueError("wrong schema")
        return {str(k): {"size": int(v["size"]), "root": str(v["root"])} for k, v in logs.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a witness state file ({exc})", path) from None


def witness_log(log: Path, key: Path, keyring: Path, state: Path) -> Cosigned:
    """One witness round over a log directory: take its latest tree head, ask the log for
    a consistency proof from what this witness cosigned last, cosign it or refuse; a
    cosignature is appended to the log's ``cosignatures.jsonl``."""
    from inspectorate.ledger._keys import load_key, load_keyring
    from inspectorate.ledger._log import add_cosignature, open_log

    view = open_log(log)
    witness = Witness(load_key(key), load_keyring(keyring), state)
    sth = view.latest_sth()
    if sth is None:
        return Cosigned(None, "the log has no tree head yet")
    last = witness.state.get(view.log_id)
    proof: list[bytes] = []
    size = int(sth.get("size") or 0)
    if last is not None and 0 < int(last["size"]) < size <= len(view.hashes):
        proof = view.consistency(int(last["size"]), size)
    answer = witness.cosign(sth, proof)
    if answer.cosig is not None:
        add_cosignature(log, answer.cosig)
    return answer
