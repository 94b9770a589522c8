"""Output safety across every writing command (issue 18 item 4).

Before: ``trace generate --out existing.jsonl`` silently overwrote evidence, and an
``--out`` on a directory or an existing file ended in ``internal error:
IsADirectoryError`` / ``FileExistsError`` (exit 3). Now every output-path problem is
exit 2 with one line naming the option and the path, checked before any work is done,
and an existing output is only replaced with ``--force``.
"""

from __future__ import annotations

import json

import pytest

from inspectorate.cli import invoke
from inspectorate.data import commitment_path, seed_path

FRONTIER = str(commitment_path("frontier-training-cap"))
SEED = str(seed_path("legit_finetune"))
HEAD = "ab" * 32


def run(capsys, *argv):
    code = invoke([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_exit_2(capsys, *argv, expect: str):
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err and "Traceback" not in err
    assert expect in err, err
    return err


def test_generate_refuses_to_overwrite_then_force_replaces(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert run(capsys, "trace", "generate", "--out", out, "--hours", "0.05")[0] == 0
    before = out.read_bytes()
    one_line_exit_2(capsys, "trace", "generate", "--out", out, "--hours", "0.1", expect="--force")
    assert out.read_bytes() == before  # evidence untouched
    assert run(capsys, "trace", "generate", "--out", out, "--hours", "0.1", "--force")[0] == 0
    assert out.read_bytes() != before


def test_generate_refuses_a_stale_head_sidecar(tmp_path, capsys):
    (tmp_path / "t.jsonl.head.json").write_text(json.dumps({"head": HEAD}))
    one_line_exit_2(capsys, "trace", "generate", "--out", tmp_path / "t.jsonl", expect="t.jsonl.head.json")


@pytest.mark.parametrize(
    "argv",
    [
        ["trace", "generate", "--out", "{dir}"],
        ["redteam", "--commitment", FRONTIER, "--baseline", SEED, "--out", "{dir}", "--rounds", "1"],
        ["difr", "serve", "--model", "m.pt", "--prompts", "p.txt", "--out", "{dir}"],
        ["difr", "calibrate", "--reference", "m.pt", "--prompts", "p.txt", "--out", "{dir}"],
        ["difr", "verify", "log.jsonl", "--reference", "m.pt", "--finding-out", "{dir}"],
        ["replay", "claim.json", "--corpus", "c.txt", "--finding-out", "{dir}"],
        ["replay", "claim.json", "--corpus", "c.txt", "--calibrate-out", "{dir}"],
        ["agent", "compile", FRONTIER, "--out", "{dir}"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_directory_where_a_file_goes_is_exit_2(tmp_path, capsys, argv):
    pytest.importorskip("torch") if argv[0] in ("difr", "replay") else None
    args = [a.replace("{dir}", str(tmp_path)) for a in argv]
    one_line_exit_2(capsys, *args, expect="is a directory")


@pytest.mark.parametrize(
    "argv",
    [
        ["redteam", "--commitment", FRONTIER, "--baseline", SEED, "--out", "{file}", "--rounds", "1"],
        ["difr", "serve", "--model", "m.pt", "--prompts", "p.txt", "--out", "{file}"],
        ["difr", "verify", "log.jsonl", "--reference", "m.pt", "--finding-out", "{file}"],
        ["replay", "claim.json", "--corpus", "c.txt", "--finding-out", "{file}"],
        ["agent", "compile", FRONTIER, "--out", "{file}"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_existing_file_is_refused_without_force(tmp_path, capsys, argv):
    existing = tmp_path / "evidence.jsonl"
    existing.write_text("precious\n")
    args = [a.replace("{file}", str(existing)) for a in argv]
    one_line_exit_2(capsys, *args, expect="--force")
    assert existing.read_text() == "precious\n"


def test_redteam_defend_refuses_an_existing_defense_file(tmp_path, capsys):
    (tmp_path / "rounds.defense.json").write_text("{}")
    args = ["redteam", "--commitment", FRONTIER, "--baseline", SEED, "--rounds", "1", "--defend"]
    one_line_exit_2(capsys, *args, "--out", tmp_path / "rounds.jsonl", expect="rounds.defense.json")


@pytest.mark.parametrize("command", [["demo"], ["testbed", "run", "--corpus", SEED]])
def test_a_file_where_a_directory_goes_is_exit_2(tmp_path, capsys, command):
    target = tmp_path / "file"
    target.write_text("x")
    one_line_exit_2(capsys, *command, "--out", target, expect="is a file")


def test_demo_refuses_a_non_empty_directory(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    one_line_exit_2(capsys, "demo", "--out", tmp_path, expect="--force")


def test_a_parent_that_is_a_file_is_exit_2(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    one_line_exit_2(
        capsys, "trace", "generate", "--out", tmp_path / "f" / "t.jsonl", expect="not a directory"
    )


def test_convert_refuses_to_overwrite_a_single_file(tmp_path, capsys):
    layout = tmp_path / "layout"
    assert run(capsys, "trace", "convert", SEED, layout)[0] == 0
    existing = tmp_path / "back.jsonl"
    existing.write_text("precious\n")
    one_line_exit_2(capsys, "trace", "convert", layout, existing, expect="--force")
    assert run(capsys, "trace", "convert", layout, existing, "--force")[0] == 0


@pytest.mark.parametrize(
    "argv,option",
    [
        (["check", SEED, "-c", FRONTIER, "--head", "xyz"], "--head"),
        (["check", SEED, "-c", FRONTIER, "--head", "g" * 64], "--head"),
        (["trace", "verify-chain", SEED, "--head", "ab" * 31], "--head"),
        (["trace", "verify-chain", SEED, "--root", "nothex"], "--root"),
    ],
)
def test_head_and_root_must_be_64_hex_digits(capsys, argv, option):
    one_line_exit_2(capsys, *argv, expect=f"{option}: must be 64 hex digits")


def test_an_upper_case_head_is_the_same_head(tmp_path, capsys):
    from inspectorate.trace import chain_head, read_trace

    head = chain_head(read_trace(SEED).records)
    assert run(capsys, "trace", "verify-chain", SEED, "--head", head.upper())[0] == 0
    assert run(capsys, "trace", "verify-chain", SEED, "--head", HEAD)[0] == 1


def test_replay_segments_zero_is_bad_input():
    pytest.importorskip("torch")
    from inspectorate.errors import InputError
    from inspectorate.replay import choose_segments

    with pytest.raises(InputError, match="--segments must be >= 1"):
        choose_segments(5, 0, seed=0)
    assert len(choose_segments(5, 9, seed=0)) == 5


def test_a_partitioned_layout_always_needs_a_new_directory(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    for extra in ([], ["--force"]):
        err = one_line_exit_2(
            capsys,
            "trace",
            "generate",
            "--layout",
            "partitioned",
            "--out",
            tmp_path,
            *extra,
            expect="new one",
        )
        assert "--force" not in err
