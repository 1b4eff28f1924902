"""Before/after: the same closed-loop load on two copies of the source tree, interleaved round by round.

    python -m bench ab BEFORE_DIR AFTER_DIR --rounds 6 --duration 6      # gradbot 1 process, plain
    python -m bench ab BEFORE_DIR AFTER_DIR --workers 2

Each directory is a copy of the repository (``bot/``, ``dialogs/``, ``handlers/``, ``storage/``); the
server is the project venv's ``gradbot serve`` with ``PYTHONPATH`` set to that copy, so the two sides
share every installed library and differ only in our code. Make a copy with
``rsync -a --exclude .venv --exclude .git --exclude 'bench/.venv*' --exclude bench/results ./ DIR/``.
Rounds alternate the order (AB, BA, …). Server CPU per message is the figure to compare: on this
shared machine msg/s swings with the neighbours' load, CPU per message much less.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench import loadwrk, machine, pipeline
from bench.servers import Variant


def _med(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def _sides(before: Path, after: Path, workers: int, safe: bool) -> list[tuple[Variant, Path]]:
    return [(Variant(f"before-{workers}p", "gradbot", workers, safe=safe), before),
            (Variant(f"after-{workers}p", "gradbot", workers, safe=safe), after)]


def run(before: Path, after: Path, *, rounds: int, duration: float, workers: int = 1, safe: bool = False,
        connections: int = 32) -> dict[str, Any]:
    loadwrk.require_wrk()
    for side in (before, after):
        if not (side / "bot" / "app.py").exists():
            raise SystemExit(f"{side} is not a copy of the repository (no bot/app.py)")
    cfg = pipeline.Config(rounds=rounds, duration=duration, connections=connections)
    work = Path(tempfile.mkdtemp(prefix="gradbot-ab-"))
    bench = pipeline.Bench(cfg, work, pipeline.servers.BENCH / "results" / "logs")
    bench.logdir.mkdir(parents=True, exist_ok=True)
    sides = _sides(before.resolve(), after.resolve(), workers, safe)
    meta = machine.describe()
    try:
        for rnd in range(rounds):
            for variant, tree in (sides if rnd % 2 == 0 else sides[::-1]):
                bench.env["PYTHONPATH"] = str(tree)
                bench.closed(variant, rnd)
    finally:
        bench.cleanup()
    meta["loadavg_end"] = machine.loadavg()
    return {"meta": meta, "before": str(before), "after": str(after), "broken": bench.broken, "runs": bench.runs}


def summary(res: dict[str, Any]) -> str:
    runs = [r for r in res["runs"] if r["valid"]]
    names = sorted({r["variant"] for r in runs}, reverse=True)  # "before-…" first
    lines = [f"{'side':12} {'runs':>4} {'msg/s':>8} {'cpu us/msg':>11} {'[min-max]':>15} {'redis us':>9} {'p99 ms':>7}"]
    for name in names:
        rs = [r for r in runs if r["variant"] == name]
        cpu = [r["server_cpu_us_per_req"] for r in rs]
        redis = _med([r["redis_cpu_us_per_req"] for r in rs]) or 0
        lines.append(f"{name:12} {len(rs):>4} {_med([r['rps'] for r in rs]) or 0:>8.0f} {_med(cpu) or 0:>11.0f} "
                     f"{f'[{min(cpu):.0f}-{max(cpu):.0f}]':>15} {redis:>9.0f}"
                     f" {_med([r['lat_ms']['p99'] for r in rs]) or 0:>7.1f}")
    ratios = _paired(runs, "server_cpu_us_per_req")
    if ratios:
        lines.append(f"after/before CPU per msg, paired by round: median {statistics.median(ratios):.3f} "
                     f"[{min(ratios):.3f}-{max(ratios):.3f}] over {len(ratios)} rounds")
    rps = _paired(runs, "rps")
    if rps:
        lines.append(f"after/before msg/s, paired by round: median {statistics.median(rps):.3f} "
                     f"[{min(rps):.3f}-{max(rps):.3f}]")
    lines.append(f"load average {res['meta'].get('loadavg_start')} -> {res['meta'].get('loadavg_end')}")
    return "\n".join(lines)


def _paired(runs: list[dict[str, Any]], key: str) -> list[float]:
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        if r.get(key):
            by_round.setdefault(r["round"], {})[r["variant"].split("-")[0]] = r[key]
    return [d["after"] / d["before"] for d in by_round.values() if "after" in d and "before" in d]


def main(args: Any) -> int:
    res = run(Path(args.before), Path(args.after), rounds=args.rounds, duration=args.duration,
              workers=args.workers, safe=args.safe, connections=args.connections)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(summary(res))
    return 0
