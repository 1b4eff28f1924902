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
    "procedures",
    "db",
    "students",
    "schools",
    "pay_sandbox",
    "orders",
    "staff",
    "broadcast",
    "retention",
)


# Command words whose module is not the word itself (``-`` becomes ``_`` otherwise).
MODULE_OF = {"check-photo": "photos", "profiles": "photos"}


def build_parser(modules: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradbot", description="WeChat graduation-paperwork assistant")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in modules:
        importlib.import_module(f"bot.commands.{name}").register(subparsers)
    return parser


def modules_for(argv: Sequence[str]) -> Sequence[str]:
    """Only the named command's module: importing all of them (the whole app) costs seconds."""
    word = next((a for a in argv if not a.startswith("-")), "")
    module = MODULE_OF.get(word, word.replace("-", "_"))
    return (module,) if module in COMMANDS else COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(modules_for(argv)).parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
