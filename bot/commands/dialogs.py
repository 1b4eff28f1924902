"""``gradbot dialogs diagram [--out docs/dialogs] [--check]``: Mermaid diagrams of every dialog."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dialogs.engine import mermaid
from dialogs.registry import build_engine

DEFAULT_OUT = Path("docs/dialogs")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("dialogs", help="dialog definitions")
    sub = p.add_subparsers(dest="dialogs_command", required=True)
    d = sub.add_parser("diagram", help="write a Mermaid diagram per dialog")
    d.add_argument("--out", type=Path, default=DEFAULT_OUT)
    d.add_argument("--check", action="store_true", help="exit 1 if a written diagram is stale")
    d.set_defaults(func=diagram)


def expected_diagrams() -> dict[str, str]:
    return {f"{spec.name}.mmd": mermaid(spec) for spec in build_engine().specs.values()}


def diagram(args: argparse.Namespace) -> int:
    out: Path = args.out
    stale = []
    for name, text in expected_diagrams().items():
        target = out / name
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        stale.append(str(target))
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    verb = "stale" if args.check else "written"
    for path in stale:
        print(f"{verb}: {path}", file=sys.stderr if args.check else sys.stdout)
    return 1 if args.check and stale else 0
