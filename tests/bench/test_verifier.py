"""check_verifier: the built-in entries conform; broken ones are named for what they break."""

from __future__ import annotations

import random

import pytest

from inspectorate.bench import BenchVerdict, CaseView, check_verifier, make_verifier, views_for


@pytest.fixture(scope="module")
def views(public, tmp_path_factory):
    from inspectorate.bench import Suite

    picked = [c for c in public.cases if c.id in ("compliance/seed-honest", "compliance/seed-violate-scale")]
    picked += [c for c in public.cases if c.track == "model_size" and "/r01/" in c.id][:2]
    return views_for(Suite(public.root, public.manifest, picked), tmp_path_factory.mktemp("views"))


def test_builtins_conform(views):
    pytest.importorskip("torch")
    for name in ("ours", "threshold"):
        assert check_verifier(make_verifier(name), views) == [], name


class Flaky:
    name, tracks = "flaky", ("compliance",)

    def verify(self, view: CaseView) -> BenchVerdict:
        return BenchVerdict("compliant", random.random())


class Liar:
    name, tracks = "liar", ("compliance",)

    def verify(self, view: CaseView) -> BenchVerdict:
        if not view.evidence.exists():
            raise FileNotFoundError(view.evidence)
        return BenchVerdict("yes", 2.0)


def test_nondeterminism_bad_values_and_bad_input_are_reported(views):
    flaky = check_verifier(Flaky(), views)
    assert any("not deterministic" in p for p in flaky) or any("accepted evidence" in p for p in flaky)
    liar = check_verifier(Liar(), views)
    assert any("decision 'yes'" in p for p in liar)
    assert any("FileNotFoundError, not InputError" in p for p in liar)
    assert check_verifier(object(), views)[0].startswith("does not implement")
