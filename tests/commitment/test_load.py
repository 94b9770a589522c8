"""Loading commitments: the seed's file runs unchanged; mistakes name rule and parameter."""

from __future__ import annotations

import pytest

from inspectorate._plugins import PluginError
from inspectorate.commitment import check, load_commitment
from inspectorate.data import SEED_TRACES, commitment_path, seed_path
from inspectorate.errors import InputError
from inspectorate.trace import read_trace


def test_seed_commitment_loads_and_runs_unchanged():
    commitment = load_commitment(seed_path("no_frontier_training.yml"))
    assert len(commitment.rules) == 23
    assert commitment.rules[0].params["threshold"] == 1.0e19  # YAML 1.1 would read "1.0e19" as a string
    verdict = check(read_trace(seed_path("legit_finetune")), commitment)
    assert verdict.verdict == 1, verdict.rationale  # the trace its registries were written for


def test_shared_seed_commitment_loads(shared_data):
    assert (
        load_commitment(shared_data / "seed-traces" / "no_frontier_training.yml").id == "no-frontier-training"
    )


@pytest.mark.parametrize("name", ["frontier-training-cap", "inference-only", "fine-tune-only"])
def test_library_commitments_load(name):
    assert load_commitment(commitment_path(name)).rules


@pytest.mark.parametrize("name", [n for n in SEED_TRACES if n != "bloom_real"])
def test_honest_traces_comply_with_frontier_cap(name):
    verdict = check(read_trace(seed_path(name)), load_commitment(commitment_path("frontier-training-cap")))
    assert verdict.verdict == 1, verdict.rationale


def test_bloom_aggregate_chip_needs_declared_hardware():
    data = load_commitment(commitment_path("frontier-training-cap")).to_dict()
    trace = read_trace(seed_path("bloom_real"))
    assert check(trace, load_commitment(data)).triggered_rule_id == "flop_physically_possible"
    data["deterministic_rules"].append(
        {"kind": "flop_physically_possible", "peak_flops": {"jean-zay-*": 384 * 312e12}}
    )
    assert check(trace, load_commitment(data)).verdict == 1


def _load(tmp_path, text):
    path = tmp_path / "c.yml"
    path.write_text(text)
    return load_commitment(path)


def test_unknown_kind_names_the_known_kinds(tmp_path):
    with pytest.raises(InputError) as err:
        _load(tmp_path, "id: x\ndeterministic_rules:\n  - kind: idle_must_be_zeroo\n")
    assert "unknown rule kind 'idle_must_be_zeroo'" in str(err.value) and "idle_must_be_zero" in str(
        err.value
    )


def test_bad_parameter_names_rule_parameter_and_accepted(tmp_path):
    with pytest.raises(InputError) as err:
        _load(tmp_path, "id: x\ndeterministic_rules:\n  - kind: aggregate_flop_cap\n    treshold: 1e19\n")
    message = str(err.value)
    assert "treshold" in message and "threshold" in message and "aggregate_flop_cap" in message
    with pytest.raises(InputError, match="scope must be one of"):
        _load(
            tmp_path,
            "id: x\ndeterministic_rules:\n  - kind: aggregate_flop_cap\n    threshold: 1\n    scope: weekly\n",
        )
    with pytest.raises(InputError, match="must be a number"):
        _load(tmp_path, "id: x\ndeterministic_rules:\n  - kind: aggregate_flop_cap\n    threshold: lots\n")
    with pytest.raises(InputError, match="missing required"):
        _load(tmp_path, "id: x\ndeterministic_rules:\n  - kind: aggregate_flop_cap\n")


def test_unreadable_yaml_gives_line(tmp_path):
    with pytest.raises(InputError) as err:
        _load(tmp_path, "id: x\ndeterministic_rules: [\n  - kind: : :\n")
    assert "unreadable YAML" in str(err.value) and err.value.line is not None


def test_repeated_kinds_get_distinct_ids():
    commitment = load_commitment(seed_path("no_frontier_training.yml"))
    ids = [spec.id for spec in commitment.rules if spec.kind == "aggregate_flop_cap"]
    assert ids == [
        "aggregate_flop_cap",
        "aggregate_flop_cap#2",
        "aggregate_flop_cap#3",
        "aggregate_flop_cap#4",
    ]


def test_a_plugin_cannot_replace_a_registered_kind():
    from inspectorate.commitment import rule

    with pytest.raises(PluginError, match="already registered"):

        @rule("idle_must_be_zero")
        def lenient(trace):
            """Idle windows may do anything."""
            return iter(())
