"""Differential parity with the reference checker: what it catches, we catch.

Both checkers judge every shared honest trace, generated honest traces and over
2,000 seeded, re-chained mutations of them, under the seed commitment fitted to each
trace. For every mutation and every rule kind the reference reports, we report the
same kind, a kind the allow-list names with a reason, or reject the input outright;
the only other answer is one of the reference's own false positives, each shown on
an honest trace. ``INSPECTORATE_PARITY_SUMMARY=path`` writes the counts as JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from false_positives import EXCEPTIONS
from parity_harness import (
    ALLOWED,
    PROJECT_PAIRS,
    Base,
    canonical,
    classify,
    judge,
    project_bases,
    reference_view,
)

from inspectorate.commitment import load_commitment
from inspectorate.data import commitment_path

pytestmark = pytest.mark.reference

MIN_MUTATIONS = 2000


def test_every_allow_list_entry_and_exception_has_a_reason():
    assert all(reason.strip() for entries in ALLOWED.values() for reason in entries.values())
    assert all(e.reason.strip() and e.witnesses for e in EXCEPTIONS.values())


WITNESSES = sorted((kind, name) for kind, e in EXCEPTIONS.items() for name in e.witnesses)


@pytest.mark.parametrize(("kind", "name"), WITNESSES)
def test_exception_is_shown_by_an_honest_trace(kind, name, reference, bases):
    exception = EXCEPTIONS[kind]
    witness: Base = bases[name]
    outcome = judge(reference, witness.commitment, witness.records)
    assert kind in outcome.ref, f"the reference does not flag {name} under {kind}"
    assert exception.applies(witness.records, witness.commitment)
    assert kind not in outcome.ours


def test_honest_traces_pass_ours_and_the_reference_flags_only_its_false_positives(reference, bases):
    for name, base in bases.items():
        outcome = judge(reference, base.commitment, base.records)
        assert outcome.ours == frozenset(), f"{name}: we flag an honest trace: {sorted(outcome.ours)}"
        assert not outcome.ref_raised
        for kind in outcome.ref:
            assert kind in EXCEPTIONS and EXCEPTIONS[kind].applies(base.records, base.commitment), (
                f"{name}: the reference flags {kind} on an honest trace and no exception explains it"
            )


def test_the_reference_reads_the_seed_commitment_whole(seed_commitment):
    assert reference_view(seed_commitment) == seed_commitment


@pytest.mark.parametrize("name", sorted({name for _, name in PROJECT_PAIRS}))
def test_project_commitments_on_every_honest_trace(name, reference, bases):
    """Where the reference can read a project rule, it finds nothing on an honest trace
    that we miss (traces the commitment does not fit break it for both checkers)."""
    commitment = canonical(load_commitment(commitment_path(name)).to_dict())
    assert reference_view(commitment)["deterministic_rules"], "the reference would read no rule"
    for trace, base in bases.items():
        outcome = judge(reference, commitment, base.records)
        verdicts = classify(outcome, base.records, commitment, EXCEPTIONS)
        assert "gap" not in verdicts.values(), f"{trace}: {verdicts}"


def test_project_commitments_fit_their_traces(reference, bases):
    for base in project_bases(bases):
        outcome = judge(reference, base.commitment, base.records)
        assert outcome.ours == frozenset(), f"{base.name}: {sorted(outcome.ours)}"


def test_every_reference_kind_is_exercised(parity, seed_commitment):
    """The mutations make the reference fire every kind the commitment lists (and the
    implicit ones), so parity is tested for each, not assumed."""
    listed = {r["kind"] for r in seed_commitment["deterministic_rules"]}
    implicit = {"hash_chain_intact", "timestamp_monotonic", "flop_physically_possible"}
    listed.add("forbidden_operators")  # added by the fitted commitments
    never = sorted((listed | implicit) - set(parity.by_kind))
    assert never == [], f"no mutation made the reference report {never}"


def test_no_gap_with_the_reference(parity):
    summary = parity.to_dict()
    target = os.environ.get("INSPECTORATE_PARITY_SUMMARY")
    if target:
        Path(target).write_text(json.dumps(summary, indent=1) + "\n")
    assert parity.mutations >= MIN_MUTATIONS
    assert parity.ref_flagged > parity.mutations // 2
    assert parity.gaps == [], "reference findings we miss (kind, base, mutation): " + "; ".join(
        map(str, parity.gaps[:20])
    )
