"""The HTML report: what it contains, how it downsamples, how it refuses bad output paths.

The page itself is checked in a real browser by test_browser.py; here the content."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import polars as pl
import pytest
from _pages import RUN_DIR, bench_dir, violating_trace

pytest.importorskip("vl_convert", reason="the [report] extra (vl-convert-python) is not installed")

from inspectorate.cli import invoke
from inspectorate.report import write_report
from inspectorate.report._run import deciding_panels
from inspectorate.report._series import Panel, decimate, segments

PAGE_LIMIT = 5_000_000


def specs(html: str) -> list[dict]:
    blob = re.search(r"var specs = (\[.*?\]);\n", html, re.S)
    assert blob, "no plot specs in the page"
    return json.loads(blob.group(1).replace("<\\/", "</"))


def self_contained(html: str) -> None:
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import|<img[^>]+src=\"?http", html, re.I)
    assert len(html.encode()) < PAGE_LIMIT


def test_decimate_bounds_points_and_keeps_the_spike() -> None:
    n = 100_000
    t = [i * 0.1 for i in range(n)]
    value = [1.0] * n
    value[54_321] = 500.0  # one sample a mean would flatten
    frame = pl.DataFrame({"t": t, "value": value, "series": ["a"] * n})
    out = decimate(frame, buckets=200)
    assert out.height <= 400
    assert out["value"].max() == 500.0
    assert out.filter(pl.col("value") == 500.0)["t"].item() == pytest.approx(t[54_321])


def test_segments_break_the_line_where_nobody_sampled() -> None:
    frame = pl.DataFrame({"t": [0.0, 1, 2, 3, 50, 51, 52], "value": [1.0] * 7, "series": ["a"] * 7})
    assert segments(frame)["segment"].n_unique() == 2


def test_deciding_signal_is_the_panel_the_evidence_names() -> None:
    empty = pl.DataFrame({"t": [], "value": [], "series": []})
    panels = [Panel(k, k, "", "sensor", empty, 0) for k in ("cpu_cores", "memory", "nic")]
    cpu = {"basis": ["sensor", "spot_check"], "evidence": {"observed_cpu_s": 1.0, "tolerance": [0, 1]}}
    assert deciding_panels(cpu, panels) == ["cpu_cores"]
    vague = {"basis": ["sensor"], "evidence": {"score": 0.9}}
    assert deciding_panels(vague, panels) == ["cpu_cores", "memory", "nic"]
    assert deciding_panels({"basis": ["netdev"], "evidence": {"net_bytes": 1}}, panels) == []


def test_run_dir_report_has_verdict_phases_and_a_plot_per_signal(tmp_path: Path) -> None:
    out = write_report(RUN_DIR, tmp_path / "run.html")
    html = out.read_text(encoding="utf-8")
    self_contained(html)
    assert "NOT CERTIFIED" in html or "CERTIFIED" in html
    for phase in ("honest_pretrain_small", "idle_baseline"):
        assert phase in html
    charts = specs(html)
    titles = [c.get("title", {}).get("text") for c in charts]
    assert {"GPU power", "GPU utilisation"} <= set(titles)  # nvsmi panels of the H100 capture
    power = charts[titles.index("GPU power")]
    lines = [layer for layer in power["layer"] if layer["mark"]["type"] == "line"][0]["data"]["values"]
    assert {r["series"] for r in lines} == {"host-a/gpu0", "host-a/gpu1", "host-b/gpu0", "host-b/gpu1"}
    bands = power["layer"][0]["data"]["values"]
    assert {b["claimed"] for b in bands} == {"pretrain", "idle"}


def test_a_saved_verdict_is_drawn_without_judging_again(tmp_path: Path) -> None:
    verdict = {
        "run": str(RUN_DIR),
        "verdict": 0,
        "confidence": 0.9,
        "outcome": "inconsistent",
        "policy": "strict",
        "reasons": ["inconsistent: idle_baseline (p1_op_type)"],
        "missing_streams": [],
        "phases": [
            {
                "phase": "idle_baseline",
                "claimed": "idle",
                "outcome": "inconsistent",
                "confidence": 0.9,
                "findings": [
                    {
                        "property": "p1_op_type",
                        "decision": "inconsistent",
                        "basis": ["nvsmi"],
                        "evidence": {"score": 0.99, "gpu_util_mean": 97.0},
                    }
                ],
            }
        ],
    }
    saved = tmp_path / "verify.json"
    saved.write_text(json.dumps(verdict), encoding="utf-8")
    html = write_report(RUN_DIR, tmp_path / "r.html", verdict=saved).read_text(encoding="utf-8")
    assert "inconsistent: idle_baseline (p1_op_type)" in html
    charts = {c.get("title", {}).get("text"): c for c in specs(html)}
    flagged = [
        layer for layer in charts["GPU utilisation"]["layer"] if layer["mark"].get("stroke") == "#d62728"
    ]
    assert flagged and flagged[0]["data"]["values"][0]["phase"] == "idle_baseline"
    assert not [layer for layer in charts["GPU power"]["layer"] if layer["mark"].get("stroke") == "#d62728"]


def test_check_report_links_every_rule_hit_to_its_record(tmp_path: Path) -> None:
    trace, commitment = violating_trace(tmp_path)
    out = tmp_path / "check.html"
    code = invoke(["check", str(trace), "-c", str(commitment), "--report", str(out), "-q"])
    assert code == 1
    html = out.read_text(encoding="utf-8")
    self_contained(html)
    assert "VIOLATION" in html and "allowed_op_types" in html
    links = set(re.findall(r'href="#rec-([^"]+)"', html))
    targets = set(re.findall(r'<tr id="rec-([^"]+)"', html))
    assert links and links <= targets


def test_bench_dir_report_reads_the_leaderboard_and_tolerates_a_torn_tail(tmp_path: Path) -> None:
    html = write_report(bench_dir(tmp_path, torn_tail=True), tmp_path / "bench.html").read_text(
        encoding="utf-8"
    )
    self_contained(html)
    charts = specs(html)
    boards = [c for c in charts if "facet" in c]
    assert {c["title"]["text"] for c in boards} == {"Track compliance", "Track op_type"}
    rows = boards[0]["data"]["values"]
    assert {r["verifier"] for r in rows} == {"inspectorate", "threshold", "forest"}
    assert all(r["lo"] <= r["value"] <= r["hi"] for r in rows if r["lo"] is not None)
    assert all(r["metric"] != "n" for r in rows)  # counts are tabled, not plotted
    family = [c for c in charts if c.get("title", {}).get("text") == "caught per family"]
    assert {r["family"] for r in family[0]["data"]["values"]} == {"relabel", "split_job"}
    assert "Per attack family: compliance" in html
    assert "case-7" in html and "case-torn" not in html


def test_output_paths_that_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace, _ = violating_trace(tmp_path)
    foreign = tmp_path / "notes.html"
    foreign.write_text("<p>mine</p>", encoding="utf-8")
    assert invoke(["report", str(trace), "--out", str(foreign)]) == 2
    assert foreign.read_text(encoding="utf-8") == "<p>mine</p>"
    assert invoke(["report", str(trace), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert invoke(["report", str(trace), "--out", str(tmp_path / "no" / "x.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    ours = tmp_path / "ours.html"
    assert invoke(["report", str(trace), "--out", str(ours)]) == 0
    assert invoke(["report", str(trace), "--out", str(ours)]) == 0  # its own page may be rewritten
    assert invoke(["report", str(trace), "--out", str(foreign), "--force"]) == 0


def test_without_the_extra_report_exits_2_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # import now raises ImportError
    trace, commitment = violating_trace(tmp_path)
    assert invoke(["report", str(trace), "--out", str(tmp_path / "r.html")]) == 2
    assert invoke(["check", str(trace), "-c", str(commitment), "--report", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("pip install 'inspectorate[report]'" in line for line in err)
    assert not (tmp_path / "r.html").exists()


def test_verify_report_writes_the_page_for_the_verdict_it_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "verify.html"
    code = invoke(["verify", str(RUN_DIR), "--format", "json", "-q", "--report", str(out)])
    printed = json.loads(capsys.readouterr().out)
    assert code == (0 if printed["verdict"] == 1 else 1)
    html = out.read_text(encoding="utf-8")
    for reason in printed["reasons"]:
        assert reason.replace("'", "&#x27;") in html


def test_bench_families_without_tracks_are_read_too(tmp_path: Path) -> None:
    out = bench_dir(tmp_path)
    board = json.loads((out / "leaderboard.json").read_text())
    for entry in board["entries"]:
        entry["families"] = {"relabel": {"caught_rate": 0.5}, "split_job": {"caught_rate": 0.25}}
    (out / "leaderboard.json").write_text(json.dumps(board))
    charts = specs(write_report(out, tmp_path / "b.html").read_text(encoding="utf-8"))
    bars = [c for c in charts if c.get("title", {}).get("text", "").endswith("per family")]
    assert len(bars) == 1 and bars[0]["title"]["text"] == "caught_rate per family"
    assert {r["family"] for r in bars[0]["data"]["values"]} == {"relabel", "split_job"}
