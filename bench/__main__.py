"""``python -m bench`` (``make bench``): the message-pipeline load benchmark.

    python -m bench                      # 5 rounds x 8 s closed loop, 3 x 10 s open loop at 500 msg/s
    python -m bench --quick              # 1 round of each, short runs: a smoke check, not figures
    python -m bench pipeline --rounds 7 --duration 10 -c 32
    python -m bench report bench/results/2026-11-24-pipeline.json   # tables of a past run again
    python -m bench profile [--safe]     # py-spy: where one gradbot worker's CPU goes under load
    python -m bench engine               # dialog engine: time per step, models, FIFO on 2 workers
    python -m bench ab BEFORE AFTER      # the same load on two copies of the tree, interleaved

Results go to bench/results/<date>-pipeline.json; method and figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from bench import pipeline, report

RESULTS = Path(__file__).resolve().parent / "results"


def _out_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    RESULTS.mkdir(exist_ok=True)
    day = dt.date.today().isoformat()
    path, n = RESULTS / f"{day}-pipeline.json", 2
    while path.exists():
        path, n = RESULTS / f"{day}-pipeline-{n}.json", n + 1
    return path


def _config(args: argparse.Namespace) -> pipeline.Config:
    cfg = pipeline.Config()
    if args.quick:
        cfg = pipeline.Config(rounds=1, duration=3.0, warmup=1.0, open_rounds=1, open_duration=3.0)
    for field in ("rounds", "duration", "connections", "open_rounds", "open_duration", "rate"):
        value = getattr(args, field)
        if value is not None:
            setattr(cfg, field, value)
    if args.only:
        wanted = tuple(args.only.split(","))
        cfg.closed_variants = tuple(n for n in cfg.closed_variants if n in wanted)
        cfg.open_variants = tuple(n for n in cfg.open_variants if n in wanted)
    if args.no_open:
        cfg.open_rounds = 0
    return cfg


def _labels() -> dict[str, str]:
    return report.labels_for((*pipeline.CLOSED, pipeline.RAW))


def cmd_pipeline(args: argparse.Namespace) -> int:
    cfg = _config(args)
    out = _out_path(args.out)
    res = pipeline.execute(cfg, out)
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    meta = res["meta"]
    load = f"load {meta['loadavg_start']} -> {meta['loadavg_end']}"
    print(f"\n{meta['cpu_model']}, {meta['nproc']} cores, {load}")
    print(report.text(res, _labels()))
    print(f"\nresults: {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    res = json.loads(Path(args.file).read_text(encoding="utf-8"))
    print(report.text(res, _labels()))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from bench import profile

    out_dir = Path(args.out_dir) if args.out_dir else None
    print(profile.run(workers=args.workers, safe=args.safe, duration=args.duration, out_dir=out_dir))
    return 0


def cmd_engine(args: argparse.Namespace) -> int:
    from bench import engine

    res = engine.run(args.steps, args.students, args.bursts, not args.no_fifo)
    out = Path(args.out) if args.out else _out_path(None).with_name(f"{dt.date.today().isoformat()}-engine.json")
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in res.items() if k != "meta"}, indent=1, ensure_ascii=False))
    print(f"load {res['meta']['loadavg_start']} -> {res['meta']['loadavg_end']}; results: {out}")
    return 0


def cmd_ab(args: argparse.Namespace) -> int:
    from bench import ab

    return ab.main(args)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        argv.insert(0, "pipeline")
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pipeline", help="load benchmark of the message pipeline (default)")
    p.add_argument("--quick", action="store_true", help="1 short round of each: a smoke check")
    p.add_argument("--rounds", type=int, help="closed-loop rounds (default 5)")
    p.add_argument("--duration", type=float, help="seconds per closed-loop run (default 8)")
    p.add_argument("-c", "--connections", type=int, help="wrk connections (default 32)")
    p.add_argument("--open-rounds", type=int, help="open-loop rounds (default 3)")
    p.add_argument("--open-duration", type=float, help="seconds per open-loop run (default 10)")
    p.add_argument("--rate", type=float, help="open-loop offered rate, msg/s (default 500)")
    p.add_argument("--only", help="comma-separated variant names to run (see bench/pipeline.py)")
    p.add_argument("--no-open", action="store_true", help="skip the open-loop phase")
    p.add_argument("--out", help="results file (default bench/results/<date>-pipeline.json)")
    p.set_defaults(func=cmd_pipeline)
    f = sub.add_parser("profile", help="py-spy profile of one gradbot worker under wrk load")
    f.add_argument("--workers", type=int, default=1)
    f.add_argument("--safe", action="store_true")
    f.add_argument("--duration", type=float, default=15.0)
    f.add_argument("--out-dir", help="where the profile text and stacks go (default bench/results)")
    f.set_defaults(func=cmd_profile)
    e = sub.add_parser("engine", help="dialog engine: time per step, models, FIFO on 2 workers (bench/engine.py)")
    e.add_argument("--steps", type=int, default=10_000)
    e.add_argument("--students", type=int, default=200)
    e.add_argument("--bursts", type=int, default=100)
    e.add_argument("--no-fifo", action="store_true", help="skip the 2-worker FIFO part")
    e.add_argument("--out", help="results file (default bench/results/<date>-engine.json)")
    e.set_defaults(func=cmd_engine)
    b = sub.add_parser("ab", help="before/after: two copies of the source tree, interleaved (bench/ab.py)")
    b.add_argument("before")
    b.add_argument("after")
    b.add_argument("--rounds", type=int, default=6)
    b.add_argument("--duration", type=float, default=6.0)
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--safe", action="store_true")
    b.add_argument("-c", "--connections", type=int, default=32)
    b.add_argument("--out", help="write the raw runs as JSON")
    b.set_defaults(func=cmd_ab)
    r = sub.add_parser("report", help="print the tables of a results file")
    r.add_argument("file")
    r.set_defaults(func=cmd_report)
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
