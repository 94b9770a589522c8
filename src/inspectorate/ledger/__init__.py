"""Signed evidence: host keys, signed chain heads, an RFC 9162 transparency log, a witness.

A low layer beside ``trace`` (it imports only ``trace`` and ``errors``): ``capture``'s
sensor signs with it, ``verify`` and ``check --head-log`` check with it. See
docs/signing.md for the design and what a real TEE would add.
"""

from inspectorate.ledger._audit import Problem, audit_log, check_stream
from inspectorate.ledger._heads import HeadSigner, machine_identity, open_signer, sign_file
from inspectorate.ledger._keys import (
    Keyring,
    SigningKey,
    enrol,
    generate_key,
    load_key,
    load_keyring,
    save_key,
)
from inspectorate.ledger._log import LogOperator, LogView, encode_proof, init_log, open_log, parse_proof
from inspectorate.ledger._merkle import (
    ProofError,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from inspectorate.ledger._verify import SignedReport, verify_signed, verify_signed_trace
from inspectorate.ledger._witness import Cosigned, Witness

__all__ = [
    "Cosigned",
    "HeadSigner",
    "Keyring",
    "LogOperator",
    "LogView",
    "Problem",
    "ProofError",
    "SignedReport",
    "SigningKey",
    "Witness",
    "audit_log",
    "check_stream",
    "encode_proof",
    "enrol",
    "generate_key",
    "init_log",
    "leaf_hash",
    "load_key",
    "load_keyring",
    "machine_identity",
    "merkle_root",
    "node_hash",
    "open_signer",
    "open_log",
    "parse_proof",
    "save_key",
    "sign_file",
    "verify_consistency",
    "verify_inclusion",
    "verify_signed",
    "verify_signed_trace",
]
