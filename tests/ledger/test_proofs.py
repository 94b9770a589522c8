"""The proof parser and verifiers under fuzzing: anything malformed is a clean
``ProofError`` (the project's ``InputError``), never another exception, and a parsed
proof that was tampered with never verifies."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from inspectorate.errors import InputError
from inspectorate.ledger._log import encode_proof, parse_proof
from inspectorate.ledger._merkle import (
    ProofError,
    consistency_path,
    inclusion_path,
    leaf_hash,
    root_from_hashes,
    verify_consistency,
    verify_inclusion,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
HASHES = [leaf_hash(bytes([i])) for i in range(16)]


def _proof_like() -> st.SearchStrategy[dict[str, Any]]:
    """Objects shaped almost like proofs: right keys, fuzzed values."""
    node = st.one_of(
        st.binary(min_size=0, max_size=40).map(bytes.hex),
        st.binary(min_size=32, max_size=32).map(bytes.hex),
        st.text(max_size=70),
        st.integers(),
        st.none(),
    )
    size = st.one_of(
        st.integers(min_value=-5, max_value=1 << 70), st.booleans(), st.text(max_size=3), st.none()
    )
    return st.fixed_dictionaries(
        {
            "schema": st.sampled_from(["inspectorate.proof/1", "inspectorate.proof/2", ""]),
            "kind": st.sampled_from(["inclusion", "consistency", "other"]),
            "index": size,
            "size": size,
            "old_size": size,
            "new_size": size,
            "path": st.one_of(st.lists(node, max_size=70), node),
        }
    )


def _verify_parsed(obj: Any) -> bool:
    kind, sizes, nodes = parse_proof(obj)
    root = root_from_hashes(HASHES)
    if kind == "inclusion":
        return verify_inclusion(sizes["index"], sizes["size"], HASHES[0], nodes, root)
    return verify_consistency(sizes["old_size"], sizes["new_size"], HASHES[0], root, nodes)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, _proof_like()))
def test_malformed_proofs_are_clean_rejections(obj: Any) -> None:
    try:
        _verify_parsed(obj)
    except ProofError as exc:
        assert isinstance(exc, InputError) and exc.reason


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=16),
    data=st.data(),
)
def test_tampered_proofs_never_verify(n: int, data: st.DataObject) -> None:
    hashes = HASHES[:n]
    root = root_from_hashes(hashes)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    m = data.draw(st.integers(min_value=1, max_value=n - 1))
    inc = encode_proof("inclusion", inclusion_path(i, hashes), index=i, size=n)
    con = encode_proof("consistency", consistency_path(m, hashes), old_size=m, new_size=n)
    for proof, check in (
        (inc, lambda nodes: verify_inclusion(i, n, hashes[i], nodes, root)),
        (con, lambda nodes: verify_consistency(m, n, root_from_hashes(hashes[:m]), root, nodes)),
    ):
        nodes = parse_proof(proof)[2]
        assert check(nodes)
        if not nodes:
            continue
        k = data.draw(st.integers(min_value=0, max_value=len(nodes) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=255))
        bad = list(nodes)
        bad[k] = (int.from_bytes(bad[k], "big") ^ (1 << bit)).to_bytes(32, "big")
        assert not check(bad)
        assert not check(nodes[:k] + nodes[k + 1 :])  # a dropped node
