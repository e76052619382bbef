"""The rehearsal's report: JSON for machines (and `colonnade capacity`), and one HTML file for
people, charts included, that opens anywhere with nothing beside it.

The summary sets three counts side by side that must agree: purchases the shoppers were
answered 201, checkouts the shop's own metrics counted as paid, and orders the shop holds for
the rehearsal's e-mail address. Orders lost are answered purchases the shop does not hold;
oversold units are flash-sale sales beyond its stock, by the shoppers' answers or the shop's
own stock level. Both must be 0.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from colonnade.ops.slo import OBJECTIVES
from colonnade.rehearsal import findings
from colonnade.rehearsal.faults import TOKENS
from colonnade.rehearsal.findings import Objective
from colonnade.rehearsal.machine import machine_cores
from colonnade.rehearsal.profile import HELD_FAULTS, clock
from colonnade.rehearsal.run import Rehearsed

FORMAT = 1
SLOS = [Objective(o.name, o.title, o.target) for o in OBJECTIVES]


def build(done: Rehearsed) -> dict[str, Any]:
    asked, profile, tally, points = done.rehearsal, done.profile, done.tally, done.points
    verdicts = findings.verdicts(points, SLOS, asked.window)
    highest, highest_at = findings.highest_held(points, SLOS, asked.window)
    steady, steady_at = findings.highest_held(points, SLOS, asked.window, steady=True)
    cores = machine_cores()
    saturated = findings.saturation(
        points,
        server_cores=min(done.processes, cores),
        database_cores=cores if done.local else None,
    )
    statuses = Counter(s for s in done.order_statuses.values() if s is not None)
    lost = sum(s is None for s in done.order_statuses.values())
    answered = len(done.order_statuses)
    return {
        "format": FORMAT,
        "target": asked.url,
        "started_at": done.started_at.isoformat(),
        "seconds": profile.seconds,
        "took_seconds": round(done.took_seconds, 2),
        "machine": {"cores": cores, "local": done.local},
        "shop": {"processes": done.processes, "server_pid": done.server_pid},
        # Every buyer of the rehearsal checked out with it: the shop's orders of the rehearsal.
        "buyers_email": done.email,
        "profile": _profile(done),
        "summary": {
            "purchases_answered": answered,
            "paid_checkouts_by_metrics": round(done.last.paid - done.first.paid),
            "orders_placed_by_metrics": round(done.last.orders_placed - done.first.orders_placed),
            "orders_in_shop": done.orders_in_shop,
            "orders_lost": lost,
            "orders_unanswered": done.orders_in_shop - (answered - lost),
            "answered_orders_by_status": dict(statuses.most_common()),
            "oversold_units": _flash(done)["oversold_units"] if profile.flash else 0,
            "highest_purchases_per_second_within_slo": round(highest, 2),
            "highest_at": highest_at,
            "highest_of_the_mix_within_slo": round(steady, 2),
            "highest_of_the_mix_at": steady_at,
            "offered_purchases": round(profile.expected_purchases()),
            "visits": dict(tally.visits),
            "turned_away": tally.turned_away_total,
            "unfinished": tally.unfinished,
            "checkout_answers": dict(tally.outcomes.most_common()),
            "failed_before_checkout": dict(tally.failed_steps.most_common()),
            "saturation_began": dataclasses.asdict(saturated[0]) if saturated else None,
        },
        "slos": [
            {
                "name": v.objective.name,
                "title": v.objective.title,
                "target": v.objective.target,
                "held": v.held,
                "broken": [dataclasses.asdict(b) for b in v.broken],
                "worst": v.worst,
            }
            for v in verdicts
        ],
        "saturation": [dataclasses.asdict(s) for s in saturated],
        "flash_sale": _flash(done) if profile.flash else None,
        "faults": [dataclasses.asdict(s) for s in done.struck]
        + [
            {"kind": f.kind, "at": f.at, "lasting": f.lasting, "detail": _held(f.kind)}
            for f in profile.faults
            if f.kind in HELD_FAULTS
        ],
        "figures": dataclasses.asdict(
            findings.figures(
                points,
                verdicts,
                saturated,
                processes=done.processes,
                highest=steady,
                window=asked.window,
            )
        ),
        "notes": [*done.notes, *_notes(done)],
        "timeline": [dataclasses.asdict(p) for p in points],
    }


def _notes(done: Rehearsed) -> list[str]:
    """What a reader should know to read the figures right."""
    notes = []
    limited = done.tally.outcomes.get("429 rate_limited", 0)
    if limited:
        notes.append(
            f"{limited} checkouts were refused 429 rate_limited: the shop limits checkouts per"
            " address, and it saw every visitor as the rehearsal's one machine. Trust that"
            " machine as a proxy (COLONNADE_FORWARDED_ALLOW_IPS) so the address each visitor"
            " names counts, or raise COLONNADE_RATE_LIMIT_CHECKOUT_PER_ADDRESS."
        )
    generator = [p.generator_cpu for p in done.points if p.generator_cpu is not None]
    if generator and max(generator) >= 0.9:
        notes.append(
            f"The load generator used up to {max(generator):.2f} cores: near one core it sends"
            " less than the profile asks, and the figures say more about it than the shop."
        )
    return notes


def _held(kind: str) -> str:
    return f"buyers paid with {TOKENS[kind]} meanwhile"


def _profile(done: Rehearsed) -> dict[str, Any]:
    profile = done.profile
    return {
        "baseline_purchases_per_second": profile.baseline,
        "peak_multiple": profile.peak_multiple,
        "peak_purchases_per_second": profile.peak,
        "ramp_seconds": profile.ramp_seconds,
        "mix": dataclasses.asdict(profile.mix),
        "flash": dataclasses.asdict(profile.flash) if profile.flash else None,
        "faults": [f.describe() for f in profile.faults],
        "market": done.rehearsal.market,
        "max_visitors": done.rehearsal.max_visitors,
        "window_seconds": done.rehearsal.window,
    }


def _flash(done: Rehearsed) -> dict[str, Any]:
    flash, tally = done.profile.flash, done.tally
    assert flash is not None
    before, after = done.flash_before, done.flash_after
    sold = after.sold - before.sold if before and after else None
    oversold = max(0, tally.flash_sold - flash.stock, (sold or 0) - flash.stock)
    return {
        "sku": flash.sku,
        "at": flash.at,
        "stock": flash.stock,
        "buyers": flash.buyers,
        "sold_answered": tally.flash_sold,
        "sold_by_shop": sold,
        "reserved_after": after.reserved - before.reserved if before and after else None,
        "sold_out_answers": tally.flash_sold_out,
        "sold_out_after_seconds": (
            round(tally.flash_last_sale - flash.at, 2) if tally.flash_last_sale else None
        ),
        "oversold_units": oversold,
    }


def write(report: dict[str, Any], stem: Path) -> tuple[Path, Path]:
    """`stem`.json and `stem`.html."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    data, page = stem.with_suffix(".json"), stem.with_suffix(".html")
    data.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    page.write_text(render_html(report), encoding="utf-8")
    return data, page


CHARTS = {
    "chart-purchases": ("Purchases per second", ["offered", "purchases", "answered"]),
    "chart-latency": ("Checkout p99 (ms), objective 1,000", ["checkout_p99_ms"]),
    "chart-cpu": ("CPU (cores busy)", ["server_cpu", "database_cpu", "generator_cpu"]),
    "chart-outbox": ("Outbox", ["outbox_lag", "outbox_backlog"]),
    "chart-queue": ("Waiting", ["in_flight", "queue_waiting", "turned_away"]),
    "chart-errors": ("Server errors per second", ["server_errors_per_second"]),
}


def _series(timeline: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    def per_second(key: str) -> list[float | None]:
        return [p[key] / p["seconds"] for p in timeline]

    series: dict[str, list[float | None]] = {
        "at": [p["at"] for p in timeline],
        "purchases": per_second("purchases"),
        "answered": per_second("answered"),
        "server_errors_per_second": per_second("server_errors"),
        "checkout_p99_ms": [
            None if p["checkout_p99"] is None else p["checkout_p99"] * 1000 for p in timeline
        ],
    }
    for key in ("offered", "server_cpu", "database_cpu", "generator_cpu", "outbox_lag"):
        series[key] = [p[key] for p in timeline]
    for key in ("outbox_backlog", "in_flight", "queue_waiting", "turned_away"):
        series[key] = [p[key] for p in timeline]
    return series


def _table(headings: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary, figure by figure: the report's first table, and the console's."""
    s = report["summary"]
    began = s["saturation_began"]
    rows = [
        ("target", f"{report['target']} ({report['shop']['processes']} server processes)"),
        ("ran", f"{report['took_seconds']:.0f}s of {report['seconds']:.0f}s planned"),
        (
            "profile",
            f"{report['profile']['baseline_purchases_per_second']:g} → "
            f"{report['profile']['peak_purchases_per_second']:g} purchases/s, mix"
            f" {_mix(report['profile']['mix'])}",
        ),
        ("purchases answered 201", f"{s['purchases_answered']:,}"),
        ("paid checkouts (shop's metrics)", f"{s['paid_checkouts_by_metrics']:,}"),
        ("orders placed (shop's metrics)", f"{s['orders_placed_by_metrics']:,}"),
        ("orders held by the shop", f"{s['orders_in_shop']:,}"),
        ("orders lost (must be 0)", str(s["orders_lost"])),
        ("orders whose buyer heard no answer", f"{s['orders_unanswered']:,}"),
        ("oversold units (must be 0)", str(s["oversold_units"])),
        (
            "highest purchases/s within SLO",
            _when(s["highest_of_the_mix_within_slo"], s["highest_of_the_mix_at"])
            + " of the mix; "
            + _when(s["highest_purchases_per_second_within_slo"], s["highest_at"])
            + " in all",
        ),
    ]
    for slo in report["slos"]:
        rows.append((f"SLO {slo['name']} ({slo['target']:.1%})", _broken(slo["broken"]) or "held"))
    rows.append(
        (
            "saturation began",
            f"{began['component']} at {clock(began['at'])}, {began['purchases_per_second']:.1f}"
            f" purchases/s: {began['detail']}"
            + (f" ({', '.join(began['faults'])})" if began["faults"] else "")
            if began
            else "nowhere",
        )
    )
    flash = report["flash_sale"]
    if flash:
        rows.append(
            (
                "flash sale",
                f"{flash['sku']} at {clock(flash['at'])}: {flash['sold_answered']} of"
                f" {flash['stock']} sold to {flash['buyers']} buyers"
                + (
                    f" in {flash['sold_out_after_seconds']:.1f}s"
                    if flash["sold_out_after_seconds"] is not None
                    else ""
                ),
            )
        )
    for fault in report["faults"]:
        rows.append((f"fault {fault['kind']}", f"at {clock(fault['at'])}: {fault['detail']}"))
    rows.append(("visitors turned away / unfinished", f"{s['turned_away']} / {s['unfinished']}"))
    return rows


def _when(rate: float, at: float | None) -> str:
    return f"{rate:.1f}" + (f" (window ending {clock(at)})" if at is not None else "")


def _broken(broken: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"broken {clock(b['start'])} to {clock(b['end'])}"
        + (f" ({', '.join(b['faults'])})" if b["faults"] else " (no fault: the load)")
        for b in broken
    )


def _mix(mix: dict[str, Any]) -> str:
    return (
        f"{mix['browse']:.0%} browse, {mix['cart']:.0%} cart, {mix['buy']:.0%} buy"
        f" ({mix['source']})"
    )


def render_html(report: dict[str, Any]) -> str:
    static = resources.files("colonnade.ops") / "static"
    uplot = (static / "uPlot.iife.min.js").read_text(encoding="utf-8")
    uplot_css = (static / "uPlot.min.css").read_text(encoding="utf-8")
    data = json.dumps(
        {
            "series": _series(report["timeline"]),
            "charts": CHARTS,
            "faults": report["faults"],
        }
    ).replace("</", "<\\/")
    charts = "".join(
        f'<section><h3>{html.escape(title)}</h3><div class="chart" id="{key}"></div></section>'
        for key, (title, _) in CHARTS.items()
    )
    saturation = _table(
        ["component", "from", "purchases/s then", "offered then", "what", "faults then"],
        [
            [
                s["component"],
                clock(s["at"]),
                f"{s['purchases_per_second']:.1f}",
                f"{s['offered']:.1f}",
                s["detail"],
                ", ".join(s["faults"]) or "none",
            ]
            for s in report["saturation"]
        ]
        or [["nowhere", "", "", "", "no component saturated", ""]],
    )
    figures = _table(
        ["figure", "value"],
        [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in report["figures"].items()],
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report["notes"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Colonnade rehearsal {html.escape(report["started_at"])}</title>
<style>{uplot_css}
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #263238; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border-bottom: 1px solid #cfd8dc; padding: 4px 10px; text-align: left; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); }}
</style></head><body>
<h1>Rehearsal of {html.escape(report["target"])}</h1>
<p>Started {html.escape(report["started_at"])}.</p>
<h2>Summary</h2>
{_table(["figure", "value"], [list(row) for row in summary_rows(report)])}
<h2>Over time</h2>
<p>Shaded: a fault held (the payment provider slow or failing); a line: a fault struck.</p>
<div class="charts">{charts}</div>
<h2>Where saturation began</h2>
{saturation}
<h2>Figures for the capacity plan</h2>
{figures}
<ul>{notes}</ul>
<script>{uplot}</script>
<script id="rehearsal-data" type="application/json">{data}</script>
<script>
"use strict";
(function () {{
  const report = JSON.parse(document.getElementById("rehearsal-data").textContent);
  const s = report.series;
  const colours = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#c62828"];
  const minutes = (v) => Math.floor(v / 60) + ":" + String(Math.round(v % 60)).padStart(2, "0");
  function faults(u) {{
    const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
    for (const f of report.faults) {{
      const x0 = u.valToPos(f.at, "x", true);
      ctx.save();
      if (f.lasting) {{
        ctx.fillStyle = "rgba(198, 40, 40, 0.08)";
        ctx.fillRect(x0, top, u.valToPos(f.at + f.lasting, "x", true) - x0, height);
      }} else {{
        ctx.strokeStyle = "rgba(198, 40, 40, 0.6)";
        ctx.beginPath(); ctx.moveTo(x0, top); ctx.lineTo(x0, top + height); ctx.stroke();
      }}
      ctx.restore();
    }}
  }}
  for (const [id, [title, names]] of Object.entries(report.charts)) {{
    new uPlot({{
      width: 560, height: 220, scales: {{ x: {{ time: false }} }},
      axes: [{{ values: (u, ticks) => ticks.map(minutes) }}, {{ size: 60 }}],
      series: [{{ label: "m:ss", value: (u, v) => v == null ? "" : minutes(v) }}].concat(
        names.map((name, i) => ({{
          label: name, stroke: colours[i], width: 2, dash: name === "answered" ? [6, 4] : [],
        }}))),
      hooks: {{ drawClear: [faults] }},
    }}, [s.at].concat(names.map((name) => s[name])), document.getElementById(id));
  }}
}})();
</script>
</body></html>
"""
