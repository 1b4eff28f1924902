"""Medians, ranges, paired ratios and target checks from a results file; text or Markdown tables."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from bench.servers import Variant

TARGET_SESS, TARGET_NOSESS, TARGET_P99_MS = 5.0, 1.0, 50.0
REF_SESS, REF_NOSESS = "werobot-sessions", "werobot-nosessions"
HEADLINE = "gradbot-2p"
_MET = {True: "yes", False: "**no**", None: "not measured"}


def _med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _fmt(x: float | None, nd: int = 0) -> str:
    if x is None:
        return "–"
    return f"{x:,.{nd}f}"


def _by_variant(runs: list[dict[str, Any]], phase: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r["phase"] == phase:
            out[r["variant"]].append(r)
    return out


def closed_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, rs in _by_variant(runs, "closed").items():
        ok = [r for r in rs if r["valid"]]
        rps = [r["rps"] for r in ok]
        rows.append({
            "variant": name, "valid": len(ok), "rounds": len(rs),
            "invalid": [f"r{r['round']}: {r['invalid_reason']}" for r in rs if not r["valid"]],
            "rps": _med(rps), "rps_min": min(rps, default=None), "rps_max": max(rps, default=None),
            "p50": _med([r["lat_ms"]["p50"] for r in ok]), "p99": _med([r["lat_ms"]["p99"] for r in ok]),
            "cpu": _med([r["server_cpu_us_per_req"] for r in ok]),
            "redis_cpu": _med([r["redis_cpu_us_per_req"] for r in ok]),
            "cores": _med([r["server_cores"] for r in ok]),
            "client_cpu": _med([r["client_cpu_us_per_req"] for r in ok]),
            "rss": _med([r["rss_mib"] for r in ok]),
        })
    return rows


def paired(runs: list[dict[str, Any]], num: str, den: str, key: str = "rps") -> list[float]:
    """Per-round num/den ratios, only for rounds where both runs were valid."""
    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    for r in runs:
        if r["phase"] == "closed" and r["valid"] and r.get(key):
            by_round[r["round"]][r["variant"]] = r[key]
    return [v[num] / v[den] for v in by_round.values() if num in v and den in v]


def ratio_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = [n for n in _by_variant(runs, "closed") if n.startswith("gradbot")]
    rows = []
    for name in names:
        for ref in (REF_SESS, REF_NOSESS):
            rs = paired(runs, name, ref)
            rows.append({"num": name, "den": ref, "median": _med(rs), "min": min(rs, default=None),
                         "max": max(rs, default=None), "n": len(rs)})
    for a, b in (("gradbot-2p", "gradbot-1p"), ("gradbot-2p-safe", "gradbot-1p-safe"),
                 ("gradbot-1p-safe", "gradbot-1p"), ("gradbot-2p-safe", "gradbot-2p"),
                 (REF_NOSESS, REF_SESS)):
        rs = paired(runs, a, b)
        if rs:
            rows.append({"num": a, "den": b, "median": _med(rs), "min": min(rs), "max": max(rs),
                         "n": len(rs)})
    return rows


def _sustained(r: dict[str, Any]) -> bool:
    return r.get("aborted_at") is None and r["achieved_rate"] >= 0.97 * r["offered_rate"]


def open_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, rs in _by_variant(runs, "open").items():
        ok = [r for r in rs if r["valid"]]
        rows.append({
            "variant": name, "valid": len(ok), "rounds": len(rs),
            "invalid": [f"r{r['round']}: {r['invalid_reason']}" for r in rs if not r["valid"]],
            "achieved": _med([r["achieved_rate"] for r in ok]),
            "sustained": sum(1 for r in ok if _sustained(r)),
            "p50s": [r["lat_ms"]["p50"] for r in ok], "p99s": [r["lat_ms"]["p99"] for r in ok],
            "max": max((r["lat_ms"]["max"] for r in ok), default=None),
            "cpu": _med([r["server_cpu_us_per_req"] for r in ok]),
            "client_cpu": _med([r["client_cpu_us_per_req"] for r in ok]),
        })
    return rows


def targets(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for ref, goal in ((REF_SESS, TARGET_SESS), (REF_NOSESS, TARGET_NOSESS)):
        rs = paired(runs, HEADLINE, ref)
        med = _med(rs)
        out.append({"target": f"{HEADLINE} msg/s ≥ {goal:g}× {ref}", "measured": med,
                    "detail": f"median of {len(rs)} paired rounds, range {_fmt(min(rs, default=None), 2)}–"
                              f"{_fmt(max(rs, default=None), 2)}",
                    "met": None if med is None else med >= goal})
    mine = [r for r in runs if r["phase"] == "open" and r["variant"] == HEADLINE]
    p99s = [r["lat_ms"]["p99"] for r in mine if r["valid"]]
    held = sum(1 for r in mine if r["valid"] and _sustained(r))
    worst = max(p99s, default=None) if held == len(mine) else float("inf")
    out.append({"target": f"{HEADLINE} p99 ≤ {TARGET_P99_MS:g} ms at a steady 500 msg/s",
                "measured": _med(p99s),
                "detail": f"median of {len(p99s)} rounds, worst {_fmt(max(p99s, default=None), 1)} ms; "
                          f"rate held in {held}/{len(mine)}",
                "met": None if worst is None else worst <= TARGET_P99_MS})
    return out


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(res: dict[str, Any], labels: dict[str, str]) -> str:
    runs = res["runs"]
    parts = ["Closed loop (wrk, keep-alive where the server allows it):", "", _md_table(
        ["variant", "msg/s median [min–max]", "p50 / p99 ms", "server CPU µs/msg", "redis-server µs/msg",
         "server cores", "RSS MiB", "valid rounds"],
        [[labels.get(r["variant"], r["variant"]),
          f"{_fmt(r['rps'])} [{_fmt(r['rps_min'])}–{_fmt(r['rps_max'])}]",
          f"{_fmt(r['p50'], 1)} / {_fmt(r['p99'], 1)}", _fmt(r["cpu"]), _fmt(r["redis_cpu"]),
          _fmt(r["cores"], 2), _fmt(r["rss"]), f"{r['valid']}/{r['rounds']}"] for r in closed_rows(runs)])]
    parts += ["", "Paired ratios (same round, msg/s):", "", _md_table(
        ["ratio", "median", "range", "rounds"],
        [[f"{r['num']} / {r['den']}", _fmt(r["median"], 2), f"{_fmt(r['min'], 2)}–{_fmt(r['max'], 2)}",
          str(r["n"])]
         for r in ratio_rows(runs)])]
    orows = open_rows(runs)
    if orows:
        parts += ["", f"Open loop at {res['config']['rate']:g} msg/s:", "", _md_table(
            ["variant", "achieved msg/s", "p50 ms per round", "p99 ms per round", "max ms",
             "server CPU µs/msg", "client CPU µs/req", "valid rounds"],
            [[labels.get(r["variant"], r["variant"]),
              _fmt(r["achieved"]) + ("" if r["sustained"] == r["valid"] else
                                     f" (rate held in {r['sustained']}/{r['valid']})"),
              ", ".join(_fmt(x, 2) for x in r["p50s"]),
              ", ".join(_fmt(x, 1) for x in r["p99s"]), _fmt(r["max"], 1), _fmt(r["cpu"]),
              _fmt(r["client_cpu"]), f"{r['valid']}/{r['rounds']}"] for r in orows])]
    parts += ["", "Targets:", "", _md_table(
        ["target", "measured", "detail", "met"],
        [[t["target"], _fmt(t["measured"], 2), t["detail"], _MET[t["met"]]] for t in targets(runs)])]
    return "\n".join(parts)


def text(res: dict[str, Any], labels: dict[str, str]) -> str:
    body = markdown(res, labels)
    extra = []
    for name, why in res.get("broken", {}).items():
        extra.append(f"not measured: {name}: {why}")
    for row in closed_rows(res["runs"]) + open_rows(res["runs"]):
        extra += [f"invalid run: {row['variant']} {x}" for x in row["invalid"]]
    return body + ("\n\n" + "\n".join(extra) if extra else "")


def labels_for(variants: tuple[Variant, ...]) -> dict[str, str]:
    return {v.name: v.label for v in variants}
