"""The school catalogue: the record type, the MoE list parser and the starter catalogue shipped here.

The MoE publishes 全国高等学校名单 each year with the columns 序号, 学校名称, 学校标识码, 主管部门,
所在地, 办学层次, 备注, and a province header row ("湖南省（147所）") before each province's schools.
:func:`parse_moe_csv` reads that shape (UTF-8 or GB18030, as Excel exports it), validates every row
and reports bad ones by line number, so ``gradbot schools import FILE.csv`` can refuse a broken
file or load the good rows knowingly. Aliases are kept apart (``data/aliases.csv``) because the
official list has none; :func:`with_aliases` adds them to any import. See docs/schools.md.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path

from bot.services.schools.regions import normalise_province, province_by_code

LEVELS = ("本科", "专科")
_PROVINCE_HEADER = re.compile(r"^\s*(\S+?)\s*[（(]\s*\d+\s*所\s*[）)]\s*$")
_CODE = re.compile(r"^\d{10}$")
REQUIRED = ("学校名称", "学校标识码", "主管部门", "所在地")


@dataclass(frozen=True, slots=True)
class School:
    code: str  # 学校标识码 (10 digits); "" in the starter catalogue where it is not confirmed
    name: str
    province: str
    city: str
    authority: str  # 主管部门
    level: str  # 办学层次: 本科 / 专科; "" for adult institutions, whose list has no such column
    aliases: tuple[str, ...] = ()
    note: str = ""  # 备注, e.g. 民办

    @property
    def code_confirmed(self) -> bool:
        return bool(_CODE.match(self.code))

    @property
    def key(self) -> str:
        """Stable identifier: the official code, or the name while the code is unconfirmed."""
        return self.code or f"name:{self.name}"


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str  # for operators (CLI), so English like the rest of the console


@dataclass(frozen=True, slots=True)
class ParseReport:
    schools: tuple[School, ...]
    errors: tuple[RowError, ...] = ()
    source: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _State:
    columns: dict[str, int] = field(default_factory=dict)
    province: str = ""
    seen_codes: dict[str, int] = field(default_factory=dict)
    seen_names: dict[str, int] = field(default_factory=dict)
    schools: list[School] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def parse_moe_csv(path: str | Path, *, allow_missing_code: bool = False) -> ParseReport:
    """Parse a CSV export of the MoE list; every rejected row is an error with its line number."""
    return parse_moe_text(decode(Path(path).read_bytes()), source=str(path),
                          allow_missing_code=allow_missing_code)


def parse_moe_text(text: str, *, source: str = "", allow_missing_code: bool = False) -> ParseReport:
    state = _State()
    reader = csv.reader(io.StringIO(text))
    for cells in _rows(reader):
        _take(state, [c.strip() for c in cells], reader.line_num, allow_missing_code)
    if not state.columns:
        state.errors.append(RowError(0, "no header row naming " + ", ".join(REQUIRED)))
    return ParseReport(tuple(state.schools), tuple(state.errors), source)


def _rows(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    for cells in reader:
        if any(c.strip() for c in cells):
            yield cells


def _take(state: _State, cells: list[str], line: int, allow_missing_code: bool) -> None:
    if not state.columns:
        if all(name in cells for name in REQUIRED):
            state.columns = {name: cells.index(name) for name in cells if name}
        return
    filled = sum(bool(c) for c in cells)
    header = _PROVINCE_HEADER.match(cells[0]) if filled == 1 else None
    if header:
        _set_province(state, header.group(1), line)
    elif _cell(state, cells, "学校名称"):
        _add_school(state, cells, line, allow_missing_code)
    elif filled > 1:
        state.errors.append(RowError(line, "学校名称 is empty"))
    # A row with one filled cell outside the name column is a title or footnote of the spreadsheet.


def _set_province(state: _State, text: str, line: int) -> None:
    province = normalise_province(text)
    if province is None:
        state.errors.append(RowError(line, f"unknown province in header row: {text!r}"))
    state.province = province or ""


def _cell(state: _State, cells: Sequence[str], column: str) -> str:
    index = state.columns.get(column)
    return cells[index] if index is not None and index < len(cells) else ""


def _add_school(state: _State, cells: list[str], line: int, allow_missing_code: bool) -> None:
    school = School(
        code=_cell(state, cells, "学校标识码"), name=_cell(state, cells, "学校名称"),
        province=_cell(state, cells, "省份") or state.province, city=_cell(state, cells, "所在地"),
        authority=_cell(state, cells, "主管部门"), level=_cell(state, cells, "办学层次"),
        note=_cell(state, cells, "备注"),
    )
    school = _infer_province(school)
    problem = _problem(school, allow_missing_code) or _duplicate(state, school)
    if problem:
        state.errors.append(RowError(line, problem))
        return
    state.schools.append(school)
    state.seen_names[school.name] = line
    if school.code:
        state.seen_codes[school.code] = line


def _infer_province(school: School) -> School:
    # Digits 3–4 of the code are the province (4143010542 → 43 湖南省) when no header said so.
    if school.province or not school.code_confirmed:
        return school
    return replace(school, province=province_by_code(school.code[2:4]) or "")


def _problem(school: School, allow_missing_code: bool) -> str | None:
    if not school.code_confirmed and (school.code or not allow_missing_code):
        return f"学校标识码 must be 10 digits, got {school.code!r} for {school.name}"
    if not school.city:
        return f"所在地 is empty for {school.name}"
    if not school.province:
        return f"no province for {school.name}: add a province header row or a 省份 column"
    if school.level and school.level not in LEVELS:
        return f"办学层次 must be 本科 or 专科, got {school.level!r} for {school.name}"
    return None


def _duplicate(state: _State, school: School) -> str | None:
    if school.code in state.seen_codes:
        return f"duplicate 学校标识码 {school.code} (first on line {state.seen_codes[school.code]})"
    if school.name in state.seen_names:
        return f"duplicate 学校名称 {school.name} (first on line {state.seen_names[school.name]})"
    return None


def parse_aliases(text: str) -> dict[str, tuple[str, ...]]:
    """``学校名称,别名`` rows with ``|`` between aliases → name → aliases."""
    rows = csv.DictReader(io.StringIO(text))
    return {r["学校名称"].strip(): tuple(a.strip() for a in r["别名"].split("|") if a.strip()) for r in rows}


def with_aliases(schools: Iterable[School], aliases: Mapping[str, tuple[str, ...]] | None = None) -> tuple[School, ...]:
    table = starter_aliases() if aliases is None else aliases
    return tuple(replace(s, aliases=tuple(dict.fromkeys(s.aliases + table.get(s.name, ())))) for s in schools)


def _data(name: str) -> str:
    return files("bot.services.schools").joinpath("data", name).read_text(encoding="utf-8")


@functools.cache
def starter_aliases() -> Mapping[str, tuple[str, ...]]:
    return parse_aliases(_data("aliases.csv"))


@functools.cache
def load_catalogue() -> tuple[School, ...]:
    """The starter catalogue shipped as package data, aliases included (docs/schools.md: provenance)."""
    report = parse_moe_text(_data("schools.csv"), source="starter", allow_missing_code=True)
    if not report.ok:
        raise ValueError(f"starter catalogue is broken: {report.errors[:3]}")
    return with_aliases(report.schools)
