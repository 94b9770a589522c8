"""Vega-Lite specs for the report (plain dicts: the page embeds them as JSON).

One function per chart. Every chart shares one colour per claimed label (so a phase
claimed ``idle`` is the same colour in every panel) and draws flagged things in red.
"""

from __future__ import annotations

from typing import Any

Spec = dict[str, Any]

FLAG = "#d62728"
OUTCOME_COLOURS = {"consistent": "#2ca02c", "unverifiable": "#ff7f0e", "inconsistent": FLAG}
_T = {"field": "t", "type": "quantitative", "title": "seconds since run start"}


def _base(height: int = 150) -> Spec:
    # A fixed y-axis extent lines the panels' x axes up, so one phase sits at one place on the page
    return {
        "width": "container",
        "height": height,
        "config": {
            "view": {"stroke": "#ddd"},
            "axis": {"labelFontSize": 11, "titleFontSize": 11},
            "axisY": {"minExtent": 150, "maxExtent": 150},
            # legends above the plot, so every panel's plot is the same width
            "legend": {"labelLimit": 180, "orient": "top", "direction": "horizontal", "titleOrient": "left"},
        },
    }


def _x(domain: list[float] | None, title: str | None = "seconds since run start") -> Spec:
    scale: Spec = {"domain": domain, "nice": False} if domain else {}
    return {"field": "t0", "type": "quantitative", "title": title, "scale": scale}


def _claimed_scale(labels: list[str]) -> Spec:
    return {"domain": labels, "scheme": "tableau10"}


def phase_timeline(bands: list[dict[str, Any]], labels: list[str], domain: list[float] | None = None) -> Spec:
    """One bar per phase on the run's clock, coloured by claim, outlined by outcome."""
    spec = _base(max(60, 18 * len(bands)))
    spec["data"] = {"values": bands}
    y = {"field": "phase", "type": "nominal", "sort": None, "title": None}
    tooltip = [{"field": f} for f in ("phase", "claimed", "outcome", "flagged_by", "t0", "t1")]
    spec["layer"] = [
        {
            "mark": {"type": "bar", "height": 12, "strokeWidth": 2.5},
            "encoding": {
                "x": _x(domain),
                "x2": {"field": "t1"},
                "y": y,
                "color": {
                    "field": "claimed",
                    "type": "nominal",
                    "scale": _claimed_scale(labels),
                    "legend": {"title": "claimed"},
                },
                "stroke": {
                    "field": "outcome",
                    "type": "nominal",
                    "legend": {"title": "outcome"},
                    "scale": {"domain": list(OUTCOME_COLOURS), "range": list(OUTCOME_COLOURS.values())},
                },
                "tooltip": tooltip,
            },
        },
        {
            "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 11, "limit": 260},
            "encoding": {
                "x": {"field": "t1", "type": "quantitative"},
                "y": y,
                "text": {"field": "mark"},
                "color": {"value": "#333"},
            },
        },
    ]
    return spec


def telemetry(
    title: str,
    unit: str,
    rows: list[dict[str, Any]],
    bands: list[dict[str, Any]],
    labels: list[str],
    flags: list[dict[str, Any]],
    domain: list[float] | None = None,
) -> Spec:
    """A signal over the run: claimed phases shaded behind it, flagged phases whose
    deciding finding rests on this signal's stream outlined red and named."""
    spec = _base()
    spec["title"] = {"text": title, "anchor": "start", "fontSize": 13}
    layers: list[Spec] = [
        {
            "data": {"values": bands},
            "mark": {"type": "rect", "opacity": 0.16},
            "encoding": {
                "x": _x(domain),
                "x2": {"field": "t1"},
                "color": {
                    "field": "claimed",
                    "type": "nominal",
                    "scale": _claimed_scale(labels),
                    "legend": {"title": "claimed"},
                },
                "tooltip": [{"field": "phase"}, {"field": "claimed"}, {"field": "outcome"}],
            },
        },
        {
            "data": {"values": rows},
            "mark": {"type": "line", "strokeWidth": 1.3, "interpolate": "linear"},
            "encoding": {
                "x": {**_T, "scale": {"domain": domain, "nice": False}} if domain else _T,
                "y": {
                    "field": "value",
                    "type": "quantitative",
                    "title": unit,
                    "axis": {"format": "~s" if unit.endswith("/s") else ",.3~r"},
                },
                "stroke": {
                    "field": "series",
                    "type": "nominal",
                    "legend": {"title": "series"},
                    "scale": {"scheme": "dark2"},
                },
                "detail": {"field": "segment", "type": "nominal"},  # no line across a gap in the samples
                "tooltip": [
                    {"field": "series"},
                    {"field": "t", "format": ".1f"},
                    {"field": "value", "format": ".3~s"},
                ],
            },
        },
    ]
    if flags:
        flags = [{**f, "row": 2 + 13 * (i % 3)} for i, f in enumerate(sorted(flags, key=lambda f: f["t0"]))]
        x = {"field": "t0", "type": "quantitative"}
        layers.append(
            {
                "data": {"values": flags},
                "mark": {
                    "type": "rect",
                    "fillOpacity": 0,
                    "stroke": FLAG,
                    "strokeWidth": 2,
                    "strokeDash": [5, 3],
                },
                "encoding": {
                    "x": x,
                    "x2": {"field": "t1"},
                    "tooltip": [{"field": "phase"}, {"field": "label"}],
                },
            }
        )
        layers.append(
            {
                "data": {"values": flags},
                "mark": {
                    "type": "text",
                    "align": "left",
                    "baseline": "top",
                    "dx": 3,
                    "dy": 3,
                    "color": FLAG,
                    "fontWeight": "bold",
                    "fontSize": 11,
                },
                "encoding": {
                    "x": x,
                    "y": {"field": "row", "type": "quantitative", "scale": None},
                    "text": {"field": "label"},
                },
            }
        )
    spec["layer"] = layers
    spec["resolve"] = {"scale": {"color": "independent"}}
    return spec


def window_flops(rows: list[dict[str, Any]], hits: list[dict[str, Any]]) -> Spec:
    """Claimed FLOP per time bin by op_type, with every flagged record as a red tick."""
    spec = _base(170)
    spec["title"] = {"text": "Claimed FLOP per time bin (window records)", "anchor": "start", "fontSize": 13}
    x = {"field": "t", "type": "temporal", "title": "window start"}
    layers: list[Spec] = [
        {
            "data": {"values": rows},
            "mark": {"type": "area", "opacity": 0.8},
            "encoding": {
                "x": x,
                "y": {
                    "field": "flops",
                    "type": "quantitative",
                    "stack": "zero",
                    "title": "FLOP",
                    "axis": {"format": ".2~e"},
                },
                "color": {"field": "op_type", "type": "nominal", "scale": {"scheme": "tableau10"}},
                "tooltip": [
                    {"field": "op_type"},
                    {"field": "t", "type": "temporal"},
                    {"field": "flops", "format": ".3~s"},
                ],
            },
        }
    ]
    if hits:
        layers.append(
            {
                "data": {"values": hits},
                "mark": {"type": "tick", "color": FLAG, "thickness": 2, "size": 14},
                "encoding": {
                    "x": x,
                    "y": {"value": 0},
                    "tooltip": [{"field": "rule_id"}, {"field": "record_id"}],
                },
            }
        )
    spec["layer"] = layers
    return spec


def leaderboard(rows: list[dict[str, Any]], track: str) -> Spec:
    """Each metric of one track: a point per verifier with its 95% interval."""
    y = {"field": "verifier", "type": "nominal", "title": None}
    return {
        "title": {"text": f"Track {track}", "anchor": "start", "fontSize": 13},
        "data": {"values": rows},
        "facet": {"field": "metric", "type": "nominal", "title": None},
        "columns": 4,  # wrap the metrics into rows: a row per track would overflow the page
        "spec": {
            "width": 180,
            "height": {"step": 22},
            "layer": [
                {
                    "mark": {"type": "rule", "strokeWidth": 2},
                    "encoding": {
                        "x": {"field": "lo", "type": "quantitative", "title": None, "scale": {"zero": True}},
                        "x2": {"field": "hi"},
                        "y": y,
                        "color": {"field": "verifier", "type": "nominal", "legend": None},
                    },
                },
                {
                    "mark": {"type": "point", "filled": True, "size": 60},
                    "encoding": {
                        "x": {"field": "value", "type": "quantitative"},
                        "y": y,
                        "color": {"field": "verifier", "type": "nominal", "legend": None},
                        "tooltip": [
                            {"field": "verifier"},
                            {"field": "metric"},
                            {"field": "value", "format": ".3f"},
                            {"field": "lo", "format": ".3f"},
                            {"field": "hi", "format": ".3f"},
                        ],
                    },
                },
            ],
        },
        "resolve": {"scale": {"x": "independent"}},
    }


def family_bars(rows: list[dict[str, Any]], metric: str) -> Spec:
    """One metric per attack family, a bar per verifier (interval whiskers where known)."""
    spec = _base(180)
    spec["title"] = {"text": f"{metric} per family", "anchor": "start", "fontSize": 13}
    spec["data"] = {"values": rows}
    x = {"field": "family", "type": "nominal", "title": None, "axis": {"labelAngle": -30}}
    spec["layer"] = [
        {
            "mark": "bar",
            "encoding": {
                "x": x,
                "xOffset": {"field": "verifier"},
                "y": {"field": "value", "type": "quantitative", "title": metric},
                "color": {"field": "verifier", "type": "nominal"},
                "tooltip": [
                    {"field": "verifier"},
                    {"field": "family"},
                    {"field": "value", "format": ".3f"},
                    {"field": "lo", "format": ".3f"},
                    {"field": "hi", "format": ".3f"},
                ],
            },
        },
        {
            "mark": {"type": "rule", "color": "#333"},
            "transform": [{"filter": "isValid(datum.lo)"}],
            "encoding": {
                "x": x,
                "xOffset": {"field": "verifier"},
                "y": {"field": "lo", "type": "quantitative"},
                "y2": {"field": "hi"},
            },
        },
    ]
    return spec
