"""``gradbot`` command line. Each command group lives in ``bot/commands/<name>.py``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules under bot.commands, each with register(subparsers) setting ``func`` on its parsers.
COMMANDS = (
    "serve",
    "worker",
    "wechat_stub",
    "menu",
    "photos",
    "send",
    "dialogs",
    "db",
    "students",
    "schools",
    "pay_sandbox",
    "orders",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradbot", description="WeChat graduation-paperwork assistant")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"bot.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
