"""`inspectorate difr serve|calibrate|verify`: exit 0 matches, 1 diverges, 2 bad input."""

from __future__ import annotations

import json

from inspectorate.cli import invoke
from inspectorate.difr import model_hash, save_checkpoint


def _prompts(tmp_path, corpus):
    path = tmp_path / "prompts.txt"
    text = corpus.vocab.decode(corpus.split("val")[:400]).replace("\n", " ")
    path.write_text("\n".join(text[i : i + 12] for i in range(0, 96, 12)) + "\n")
    return path


SERVE = [
    "--seed",
    "7",
    "--max-new",
    "16",
    "--prompt-length",
    "8",
    "--top-k",
    "20",
    "--projection-seed",
    "3",
    "--projection-layer",
    "1",
    "--projection-dim",
    "4",
]


def test_serve_then_verify_honest_and_substitute(ref_ckpt, other_seed, corpus, tmp_path, capsys):
    prompts = _prompts(tmp_path, corpus)
    log = tmp_path / "served.jsonl"
    assert (
        invoke(
            ["difr", "serve", "--model", str(ref_ckpt), "--prompts", str(prompts), "--out", str(log), *SERVE]
        )
        == 0
    )
    cal = tmp_path / "cal.json"
    args = [
        "--max-new",
        "16",
        "--prompt-length",
        "8",
        "--top-k",
        "20",
        "--projection-seed",
        "3",
        "--projection-layer",
        "1",
        "--projection-dim",
        "4",
        "--threads",
        "1",
    ]
    assert (
        invoke(
            [
                "difr",
                "calibrate",
                "--reference",
                str(ref_ckpt),
                "--prompts",
                str(prompts),
                "--out",
                str(cal),
                *args,
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        invoke(
            [
                "difr",
                "verify",
                str(log),
                "--reference",
                str(ref_ckpt),
                "--calibration",
                str(cal),
                "--format",
                "json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert (
        out["decision"] == "consistent"
        and out["sequences"] == 8
        and out["token_difr"]["exact_match_rate"] >= 0.98
    )

    # the substitute's log, rewritten to claim the reference's hash (what a liar would ship)
    other = save_checkpoint(tmp_path / "other.pt", other_seed, corpus.vocab.chars)
    bad = tmp_path / "bad.jsonl"
    assert (
        invoke(["difr", "serve", "--model", str(other), "--prompts", str(prompts), "--out", str(bad), *SERVE])
        == 0
    )
    lines = bad.read_text().splitlines()
    head = json.loads(lines[0])
    assert head["model_hash"] == model_hash(other_seed)
    head["model_hash"] = json.loads(log.read_text().splitlines()[0])["model_hash"]
    bad.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    assert invoke(["difr", "verify", str(bad), "--reference", str(ref_ckpt), "--calibration", str(cal)]) == 1
    assert "INCONSISTENT" in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line(ref_ckpt, tmp_path, capsys):
    (tmp_path / "log.jsonl").write_text("not json\n")
    assert invoke(["difr", "verify", str(tmp_path / "log.jsonl"), "--reference", str(ref_ckpt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "log.jsonl:1" in err[0]
    assert (
        invoke(["difr", "verify", str(tmp_path / "log.jsonl"), "--reference", str(tmp_path / "none.pt")]) == 2
    )
    (tmp_path / "p.txt").write_text("\u00e9\u00e9\n")
    args = [
        "difr",
        "serve",
        "--model",
        str(ref_ckpt),
        "--prompts",
        str(tmp_path / "p.txt"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert invoke(args) == 2
    assert "vocabulary" in capsys.readouterr().err


def test_cli_import_does_not_load_torch():
    import subprocess
    import sys

    code = "import sys, inspectorate.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_deterministic_serve_with_nonce_and_tie_check(ref_ckpt, corpus, tmp_path, capsys):
    prompts = _prompts(tmp_path, corpus)
    common = ["--max-new", "16", "--prompt-length", "8", "--top-k", "20", "--precision", "bfloat16"]
    log, cal, ties = tmp_path / "det.jsonl", tmp_path / "cal.json", tmp_path / "ties.json"
    serve = ["difr", "serve", "--model", str(ref_ckpt), "--prompts", str(prompts), "--out", str(log)]
    assert invoke([*serve, *common, "--nonce", "n-1", "--deterministic"]) == 0
    assert json.loads(log.read_text().splitlines()[0])["server"]["decode"] == "deterministic"
    calib = ["difr", "calibrate", "--reference", str(ref_ckpt), "--prompts", str(prompts), "--out", str(cal)]
    assert invoke([*calib, *common, "--variants", "2", "--threads", "1", "--ties-out", str(ties)]) == 0
    capsys.readouterr()
    verify = ["difr", "verify", str(log), "--reference", str(ref_ckpt), "--calibration", str(cal)]
    assert invoke([*verify, "--ties", str(ties), "--nonce", "n-1", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ties"]["deterministic_decode"] and out["ties"]["capacity_bits"] == 0.0
    assert invoke([*verify, "--nonce", "n-2"]) == 1  # the seed does not derive from this nonce
    assert "nonce" in capsys.readouterr().out
    assert invoke([*serve, *common, "--nonce", "n-1", "--seed", "3", "--force"]) == 2
