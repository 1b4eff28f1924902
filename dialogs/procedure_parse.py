"""Reading and validating a procedure file. Every error names the file and the line of the step.

What needs services (photo profiles, fee items) is checked by the bot layer
(``bot.services.procedure_check``); everything else is checked here, including that the compiled
dialog is sound (reachable states, state names that fit the database).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import jinja2

from dialogs.engine import check_spec
from dialogs.procedure_steps import compile_procedure
from dialogs.procedure_types import REQUIREMENTS, STATE_MAX, STEP_TYPES, Procedure, ProcedureError

_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TOP_KEYS = {"name", "title", "school", "start_words", "menu_key", "window", "eligible", "texts", "editable",
            "edit_from", "steps"}
STEP_KEYS = {"type", "id", "status", "prompt", "when", "unmet_text", "declined", "pattern", "upper", "error",
             "optional", "options", "refuse", "refused_text", "profile", "lock", "edit_from", "item",
             "fee_procedure", "per_attempt", "on_reject", "reapply_limit", "closed_text", "items", "courses",
             "min_total", "answers", "categories", "correct_text", "wrong_text", "category_prompt", "recheck",
             "title", "subtitle", "rows", "notes", "copies", "filename", "available_from", "wait_text"}
NEEDS = {"text": ("prompt",), "choice": ("prompt", "options"), "info": ("prompt",), "photo": ("prompt",),
         "confirm": ("prompt",), "pay": ("item",), "done": ("prompt",), "documents": ("items",),
         "credits": ("prompt", "courses", "min_total"), "check": ("prompt", "categories", "correct_text",
                                                                   "wrong_text"), "pdf": ("title", "rows")}
ITEM_KEYS = {"key", "title", "pages", "formats", "max_kb", "min_kb", "required", "via", "one_of", "prompt"}
IMAGE_FORMATS, FILE_FORMATS = {"JPEG", "PNG"}, {"ZIP", "PDF"}
WHEN_TESTS = ("equals", "not_equals", "in", "not_in")
LINK_FIELDS = {"link.education_type", "link.level", "link.school_code", "link.school_name", "link.cohort"}
ASKS = ("text", "choice", "photo", "documents", "credits", "check")


def load_procedure(path: Path) -> Procedure:
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProcedureError(f"{path}: {exc}") from None
    return parse_procedure(raw, text, str(path))


def parse_procedure(raw: Mapping[str, Any], text: str = "", source: str = "") -> Procedure:
    _top(raw, text, source)
    steps = [_step(s, i, text, source) for i, s in enumerate(raw.get("steps", []))]
    if not steps:
        raise ProcedureError(f"{source}: a procedure needs [[steps]]")
    _check_order(steps, text, source)
    window = raw.get("window", {})
    procedure = Procedure(
        name=str(raw["name"]), title=str(raw.get("title", raw["name"])), steps=tuple(steps), source=source,
        school=str(raw.get("school", "*")), opens=_date(window.get("opens"), text, source, "window"),
        closes=_date(window.get("closes"), text, source, "window"), start_words=tuple(raw.get("start_words", ())),
        menu_key=str(raw.get("menu_key", "")), eligible={k: tuple(v) for k, v in raw.get("eligible", {}).items()},
        texts=dict(raw.get("texts", {})), editable=bool(raw.get("editable", False)),
        edit_from=str(raw.get("edit_from", "")),
    )
    _check_top_rules(procedure, raw, text, source)
    _check_compiled(procedure, text, source)
    return procedure


def _top(raw: Mapping[str, Any], text: str, source: str) -> None:
    if not _ID.match(str(raw.get("name", ""))):
        raise ProcedureError(f"{source}:{_line(text, 'name')}: name must be lower-case letters, digits, _")
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise ProcedureError(f"{source}:{_line(text, unknown[0])}: unknown key {unknown[0]!r}")


def _check_top_rules(procedure: Procedure, raw: Mapping[str, Any], text: str, source: str) -> None:
    if procedure.opens and procedure.closes and procedure.closes < procedure.opens:
        raise ProcedureError(f"{source}:{_line(text, 'window')}: the window closes before it opens")
    types = [s["type"] for s in procedure.steps]
    if procedure.eligible and "link_school" not in types:
        raise ProcedureError(f"{source}:{_line(text, 'eligible')}: eligibility needs a link_school step")
    if set(procedure.eligible) - {"education_type", "level"}:
        raise ProcedureError(f"{source}:{_line(text, 'eligible')}: eligible knows education_type and level")
    if procedure.edit_from and procedure.edit_from not in {s["id"] for s in procedure.steps}:
        raise ProcedureError(f"{source}:{_line(text, 'edit_from')}: edit_from names no step")


def _date(value: Any, text: str = "", source: str = "", key: str = "") -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ProcedureError(f"{source}:{_line(text, key)}: {value!r} is not a date (YYYY-MM-DD)") from None


def _step(raw: Mapping[str, Any], index: int, text: str, source: str) -> dict[str, Any]:
    step = dict(raw)
    kind = step.get("type")
    where = f"{source}:{_line(text, '[[steps]]', index)}"
    if kind not in STEP_TYPES:
        raise ProcedureError(f"{where}: unknown step type {kind!r} (one of {', '.join(STEP_TYPES)})")
    step.setdefault("id", f"{kind}" if kind in REQUIREMENTS or kind == "done" else f"{kind}{index + 1}")
    if not _ID.match(str(step["id"])) or "__" in str(step["id"]):
        raise ProcedureError(f"{where}: step id {step['id']!r} must be lower-case letters, digits, _")
    unknown = sorted(set(step) - STEP_KEYS)
    if unknown:
        raise ProcedureError(f"{where}: step {step['id']!r} has an unknown key {unknown[0]!r}")
    missing = [k for k in NEEDS.get(str(kind), ()) if k not in step]
    if missing:
        raise ProcedureError(f"{where}: step {step['id']!r} ({kind}) needs {', '.join(missing)}")
    for check in (_texts_compile, _items, _courses, _rows, _when_shape):
        check(step, where)
    if "available_from" in step:
        step["available_from"] = _date(step["available_from"], text, source, "available_from")
    return step


def step_line(source: str, index: int) -> str:
    """``file:line`` of the index-th step of a procedure file (for checks made outside the parser)."""
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError:
        return source
    return f"{source}:{_line(text, '[[steps]]', index)}"


def _texts_compile(step: Mapping[str, Any], where: str) -> None:
    env = jinja2.Environment(autoescape=False)  # noqa: S701 - only parsed here, to report syntax errors
    for key in ("prompt", "declined", "refused_text", "closed_text", "correct_text", "wrong_text", "wait_text"):
        if key in step:
            try:
                env.parse(str(step[key]))
            except jinja2.TemplateSyntaxError as exc:
                raise ProcedureError(f"{where}: step {step['id']!r}: {key} is not a valid template: {exc}") from None


def _items(step: dict[str, Any], where: str) -> None:
    if step["type"] != "documents":
        return
    items = step["items"]
    if not isinstance(items, list) or not items:
        raise ProcedureError(f"{where}: step {step['id']!r}: items must list at least one document")
    step["items"] = [_item(dict(i), step["id"], where) for i in items]


def _item(item: dict[str, Any], sid: str, where: str) -> dict[str, Any]:
    if set(item) - ITEM_KEYS or not _ID.match(str(item.get("key", ""))) or "title" not in item:
        raise ProcedureError(f"{where}: step {sid!r}: each item needs key (lower-case) and title, and knows "
                             f"{', '.join(sorted(ITEM_KEYS))}")
    link = item.setdefault("via", "chat") == "link"
    item.setdefault("formats", ["ZIP"] if link else ["JPEG"])
    item.setdefault("max_kb", 20480 if link else 5120)
    item.setdefault("min_kb", 1 if link else 10)
    allowed = FILE_FORMATS if link else IMAGE_FORMATS
    if item["via"] not in ("chat", "link") or not set(item["formats"]) <= allowed:
        raise ProcedureError(f"{where}: step {sid!r}: item {item['key']!r} sent by {item['via']} takes "
                             f"formats {', '.join(sorted(allowed))}")
    return item


def _courses(step: Mapping[str, Any], where: str) -> None:
    if step["type"] != "credits":
        return
    ok = isinstance(step["courses"], list) and step["courses"] and all(
        isinstance(c, dict) and c.get("name") and isinstance(c.get("credits"), int) for c in step["courses"])
    if not ok:
        raise ProcedureError(f"{where}: step {step['id']!r}: courses are {{ name = \"...\", credits = N }}")


def _rows(step: Mapping[str, Any], where: str) -> None:
    if step["type"] != "pdf":
        return
    rows = step["rows"]
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 2 for r in rows):
        raise ProcedureError(f"{where}: step {step['id']!r}: rows are [\"label\", \"{{{{ template }}}}\"] pairs")


def _when_shape(step: Mapping[str, Any], where: str) -> None:
    if "when" not in step:
        return
    tests = step["when"] if isinstance(step["when"], list) else [step["when"]]
    for test in tests:
        if not isinstance(test, dict) or "field" not in test or sum(k in test for k in WHEN_TESTS) != 1:
            raise ProcedureError(f"{where}: step {step['id']!r}: when is {{ field = \"...\", equals = \"...\" }} "
                                 f"(or not_equals, in, not_in)")
    if step["type"] == "done":
        raise ProcedureError(f"{where}: the done step cannot have a condition")


def when_tests(step: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    when = step.get("when", [])
    return list(when) if isinstance(when, list) else [when]


def _check_order(steps: Sequence[Mapping[str, Any]], text: str, source: str) -> None:
    ids = [s["id"] for s in steps]
    for i, step in enumerate(steps):
        where = f"{source}:{_line(text, '[[steps]]', i)}"
        if ids.count(step["id"]) > 1:
            raise ProcedureError(f"{where}: step id {step['id']!r} is used twice")
        for key in ("on_reject", "edit_from"):
            if key in step and step[key] not in ids[:i]:
                raise ProcedureError(f"{where}: {key} must name an earlier step, not {step[key]!r}")
        for test in when_tests(step):
            field = str(test["field"])
            if field not in LINK_FIELDS and field.split("__", 1)[0] not in ids[:i]:
                raise ProcedureError(f"{where}: when field {field!r} must be an earlier step or one of "
                                     f"{', '.join(sorted(LINK_FIELDS))}")
        if step["type"] == "review" and not any(s["type"] in ASKS for s in steps[:i]):
            raise ProcedureError(f"{where}: a review needs something to review before it")
        if step["type"] == "done" and i != len(steps) - 1:
            raise ProcedureError(f"{where}: done must be the last step")
    if steps[-1]["type"] != "done":
        raise ProcedureError(f"{source}:{_line(text, '[[steps]]', len(steps) - 1)}: the last step must be done")


def _check_compiled(procedure: Procedure, text: str, source: str) -> None:
    spec = compile_procedure(procedure)
    index = {s["id"]: i for i, s in enumerate(procedure.steps)}

    def where(state: str) -> str:
        return f"{source}:{_line(text, '[[steps]]', index.get(state.split('__', 1)[0], 0))}"

    for state in spec.states:
        if len(state.name) > STATE_MAX:
            raise ProcedureError(f"{where(state.name)}: state {state.name!r} is longer than {STATE_MAX} "
                                 f"characters: shorten the step id or item key")
    problems = check_spec(spec)
    if problems:
        raise ProcedureError(f"{where(problems[0].split(':', 1)[0])}: {'; '.join(problems)}")


def _line(text: str, needle: str, occurrence: int = 0) -> int:
    """1-based line of the n-th line starting with ``needle`` (for error messages)."""
    seen = -1
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(needle):
            seen += 1
            if seen == occurrence:
                return number
    return 1
