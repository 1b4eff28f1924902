"""``gradbot procedures list | show NAME | check FILE...``: the configured procedures.

``check`` validates a school's file the way start-up does (syntax, step types and keys, order,
conditions, the compiled dialog, photo profiles, fee items) and renders every text with sample
answers; each problem is printed as ``file:line: message`` and the exit code is 1.
docs/procedures.md explains the file format.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.config import Settings, SettingsError
from bot.render import Renderer
from bot.services.payments.fees import load_fees
from bot.services.photos.profiles import profiles_from_env
from bot.services.procedure_check import procedure_problems
from dialogs.engine import DialogSpec
from dialogs.procedure import Procedure, ProcedureError, compile_procedure, load_procedure, prompt_name, when_tests
from dialogs.procedure_parse import step_line
from dialogs.registry import load_procedures

SAMPLE = {"title": "示例", "opens": "2025-03-01", "closes": "2025-05-31", "eligible": "成人教育",
          "pay_url": "https://x/pay/t", "pay_amount_yuan": "13.50", "pay_description": "示例费用",
          "fixed_url": "https://x/files/t", "upload_url": "https://x/upload/t", "pdf_from": "2025-06-01"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("procedures", help="procedure files (docs/procedures.md)")
    sub = p.add_subparsers(dest="procedures_command", required=True)
    sub.add_parser("list", help="every procedure, built in and from GRADBOT_PROCEDURES_DIR").set_defaults(
        func=run_list)
    show = sub.add_parser("show", help="the steps of one procedure")
    show.add_argument("name")
    show.set_defaults(func=run_show)
    check = sub.add_parser("check", help="validate procedure files; exit 1 on the first problem of each")
    check.add_argument("files", nargs="+", type=Path)
    check.set_defaults(func=run_check)


def _all() -> list[Procedure]:
    settings = Settings.from_env()
    return load_procedures(Path(settings.procedures_dir) if settings.procedures_dir else None)


def run_list(args: argparse.Namespace) -> int:
    try:
        procedures = _all()
    except (SettingsError, ProcedureError, OSError) as exc:
        print(f"gradbot procedures: {exc}", file=sys.stderr)
        return 1
    for p in procedures:
        window = f"{p.opens or '…'} – {p.closes or '…'}"
        print(f"{p.name:28} {p.title:16} school {p.school:10} {window:25} {len(p.steps):2} steps  "
              f"{' '.join(p.start_words)}  {p.source}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    try:
        found = {p.name: p for p in _all()}
    except (SettingsError, ProcedureError, OSError) as exc:
        print(f"gradbot procedures: {exc}", file=sys.stderr)
        return 1
    proc = found.get(args.name)
    if proc is None:
        print(f"gradbot procedures: no procedure {args.name!r} (one of {', '.join(sorted(found))})", file=sys.stderr)
        return 1
    spec = compile_procedure(proc)
    print(f"{proc.name}: {proc.title} ({proc.source})")
    print(f"  school {proc.school}, window {proc.opens or '…'} – {proc.closes or '…'}, "
          f"start {' / '.join(proc.start_words)}, menu {proc.menu_key or '-'}, {len(spec.states)} states")
    for n, step in enumerate(proc.steps, 1):
        print(f"  {n:2}. {step['id']:16} {step['type']:11} {step.get('status', '')}{_extras(step)}")
    return 0


def _extras(step: Mapping[str, Any]) -> str:
    parts = [f"when {t['field']} {next(k for k in t if k != 'field')} {next(v for k, v in t.items() if k != 'field')}"
             for t in when_tests(step)]
    for key in ("item", "profile", "on_reject", "reapply_limit", "min_total", "available_from"):
        if key in step:
            parts.append(f"{key} {step[key]}")
    if step["type"] == "documents":
        parts.append("items " + ", ".join(str(i["key"]) for i in step["items"]))
    return ("  [" + "; ".join(parts) + "]") if parts else ""


def run_check(args: argparse.Namespace) -> int:
    profiles, fees = profiles_from_env(), load_fees()
    failed = 0
    for path in args.files:
        problems = check_file(path, profiles, fees)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"ok: {path}")
        failed += bool(problems)
    return 1 if failed else 0


def check_file(path: Path, profiles: object, fees: object) -> list[str]:
    try:
        proc = load_procedure(path)
    except ProcedureError as exc:
        return [str(exc)]
    except OSError as exc:
        return [f"{path}: {exc.strerror or exc}"]
    problems = procedure_problems(proc, profiles, fees)  # type: ignore[arg-type]
    return problems or render_problems(proc, compile_procedure(proc))


def render_problems(proc: Procedure, spec: DialogSpec) -> list[str]:
    """Every text renders with sample answers (a misspelt variable shows up here, not in a chat)."""
    renderer = Renderer()
    renderer.add_templates(dict(spec.templates))
    index = {s["id"]: i for i, s in enumerate(proc.steps)}
    problems = []
    for state in spec.states:
        if state.expects == "auto":
            continue
        data = {**SAMPLE, **state.sample}
        options = list(state.options)
        try:
            renderer.render(spec.prompt_of(state.name), data=data, payload={}, options=options)
        except Exception as exc:
            where = step_line(proc.source, index.get(state.name.split("__", 1)[0], 0))
            problems.append(f"{where}: the text of {state.name!r} does not render: {exc}")
    for step in proc.steps_of("pdf"):
        try:
            renderer.render(prompt_name(proc.name, step["id"]), data=SAMPLE, url="https://x/docs/t", hours=24)
        except Exception as exc:
            problems.append(f"{step_line(proc.source, index[step['id']])}: the text of {step['id']!r} does not "
                            f"render: {exc}")
    return problems
