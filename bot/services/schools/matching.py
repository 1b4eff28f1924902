"""Finding the school a student means from what they type.

Each method gives a score out of 100, and a school keeps its best (docs/schools.md has the table):
exact name or alias, same pinyin (a homophone typo), the query containing a full name, the query
being a suffix (an independent college's short name), the query being an abbreviation (its
characters appear in order in the name: 湖南师大 ⊂ 湖南师范大学), and plain edit-distance similarity
on characters and on pinyin. Latin queries are compared with pinyin initials and full pinyin.
rapidfuzz does the bulk scoring in C++, so a query over 3,000 schools takes a few milliseconds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process
from rapidfuzz.distance import LCSseq

from bot.services.schools.catalogue import School
from bot.services.schools.textnorm import full_pinyin, initials, is_latin_query, simplify_text
from bot.services.text import render
from dialogs.spec import Say

EXACT_NAME, EXACT_ALIAS, SAME_PINYIN, CONTAINS_NAME, SUFFIX = 100.0, 99.0, 95.0, 92.0, 85.0
INITIALS, LATIN_PINYIN = 92.0, 97.0
MIN_SCORE = 55.0
CLEAR_SCORE, CLEAR_MARGIN = 80.0, 12.0
# Department words students add after the school's name; matching ignores them.
_DEPARTMENT = re.compile(
    r"(继续教育学院|成人教育学院|网络教育学院|继续教育|成人教育|网络教育|成教院|成教|网院|自考办|自考|函授站|函授|教学点)$"
)


@dataclass(frozen=True, slots=True)
class Match:
    school: School
    score: float  # 0–100
    how: str  # which method gave the score: exact, alias, pinyin, contains, suffix, abbreviation, similar

    @property
    def confidence(self) -> float:
        return round(self.score / 100, 3)


@dataclass(frozen=True, slots=True)
class _Text:
    school: int
    text: str
    pinyin: str
    initials: str
    alias: bool


@functools.lru_cache(maxsize=8192)
def _texts_of(school: School) -> tuple[tuple[str, str, str, bool], ...]:
    names = [(simplify_text(school.name), False)] + [(simplify_text(a), True) for a in school.aliases]
    return tuple((t, full_pinyin(t), initials(t), alias) for t, alias in names if t)


class SchoolIndex:
    """Schools with their folded names, pinyin and initials worked out once."""

    def __init__(self, schools: Iterable[School]) -> None:
        self.schools: tuple[School, ...] = tuple(schools)
        self._entries = [_Text(i, *t) for i, s in enumerate(self.schools) for t in _texts_of(s)]
        self._texts = [e.text for e in self._entries]
        self._pinyin = [e.pinyin for e in self._entries]
        self._initials = [e.initials for e in self._entries]
        # Dictionaries turn the exact, pinyin, containment and suffix tests into lookups.
        self._by_text = _group((e.text, e) for e in self._entries)
        self._by_pinyin = _group((e.pinyin, e) for e in self._entries)
        self._by_initials = _group((e.initials, e) for e in self._entries)
        self._by_suffix = _group((e.text[-n:], e) for e in self._entries for n in range(4, len(e.text)))

    def subset(self, province: str | None = None, city: str | None = None) -> SchoolIndex:
        return SchoolIndex(s for s in self.schools
                           if (not province or s.province == province) and (not city or s.city == city))

    def match(self, query: str, limit: int = 5) -> list[Match]:
        q = clean_query(query)
        if len(q) < 2:
            return []
        best: dict[int, tuple[float, str]] = {}
        scorers = _latin_scores if is_latin_query(q) else _han_scores
        for entry, score, how in scorers(self, q):
            if score > best.get(entry.school, (0.0, ""))[0]:
                best[entry.school] = (score, how)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], len(self.schools[kv[0]].name), kv[0]))
        return [Match(self.schools[i], round(s, 1), how) for i, (s, how) in ranked[:limit] if s >= MIN_SCORE]


def clean_query(query: str) -> str:
    q = simplify_text(query)
    stripped = _DEPARTMENT.sub("", q)
    return stripped if len(stripped) >= 2 else q


Scored = Iterable[tuple[_Text, float, str]]


def _han_scores(index: SchoolIndex, q: str) -> Scored:
    for entry in index._by_text.get(q, ()):
        yield entry, EXACT_ALIAS if entry.alias else EXACT_NAME, "alias" if entry.alias else "exact"
    for part in _substrings(q, 4):
        for entry in index._by_text.get(part, ()):
            yield entry, CONTAINS_NAME, "contains"
    if len(q) >= 4:
        for entry in index._by_suffix.get(q, ()):
            yield entry, SUFFIX, "suffix"
    yield from _abbreviations(index, q)
    yield from _similar(index, q, index._texts, 0.85)
    if len(q) >= 3:
        q_pinyin = full_pinyin(q)
        for entry in index._by_pinyin.get(q_pinyin, ()):
            yield entry, SAME_PINYIN, "pinyin"
        yield from _similar(index, q_pinyin, index._pinyin, 0.8)


def _substrings(q: str, shortest: int) -> Iterator[str]:
    """Proper substrings of ``q`` at least ``shortest`` long: names a longer query may contain."""
    for size in range(shortest, len(q)):
        for start in range(len(q) - size + 1):
            yield q[start:start + size]


def _group(pairs: Iterable[tuple[str, _Text]]) -> dict[str, list[_Text]]:
    groups: dict[str, list[_Text]] = {}
    for key, entry in pairs:
        groups.setdefault(key, []).append(entry)
    return groups


def _abbreviations(index: SchoolIndex, q: str) -> Scored:
    # LCS length == len(q) means every query character appears in the name, in order. Names much
    # longer than the query lose points: 湖南农大 is 湖南农业大学, not 湖南农业大学东方科技学院.
    for _text, _lcs, i in process.extract(q, index._texts, scorer=LCSseq.similarity, limit=None,
                                          score_cutoff=len(q)):
        entry = index._entries[i]
        yield entry, max(60.0, 88.0 - 4.0 * (len(entry.text) - len(q))), "abbreviation"


def _similar(index: SchoolIndex, q: str, choices: Sequence[str], weight: float) -> Scored:
    cutoff = MIN_SCORE / weight
    for _text, score, i in process.extract(q, choices, scorer=fuzz.ratio, limit=None, score_cutoff=cutoff):
        yield index._entries[i], score * weight, "similar"


def _latin_scores(index: SchoolIndex, q: str) -> Scored:
    for entry in index._by_initials.get(q, ()):
        yield entry, INITIALS, "initials"
    for entry in index._by_pinyin.get(q, ()):
        yield entry, LATIN_PINYIN, "pinyin"
    yield from _similar(index, q, index._pinyin, 0.85)
    yield from _similar(index, q, index._initials, 0.8)


def match_school(query: str, candidates: SchoolIndex | Iterable[School], limit: int = 5) -> list[Match]:
    """Ranked matches, best first; pass a prebuilt :class:`SchoolIndex` when matching repeatedly."""
    index = candidates if isinstance(candidates, SchoolIndex) else SchoolIndex(candidates)
    return index.match(query, limit)


def clear_winner(matches: Sequence[Match]) -> Match | None:
    """The match to take without asking: an exact name or alias nobody else shares, or a high
    score well ahead of the next one. Otherwise the dialog shows :func:`choices_reply`."""
    if not matches:
        return None
    top = matches[0]
    second = matches[1].score if len(matches) > 1 else 0.0
    if top.score >= EXACT_ALIAS and second < EXACT_ALIAS:
        return top
    return top if top.score >= CLEAR_SCORE and top.score - second >= CLEAR_MARGIN else None


def choices_reply(query: str, matches: Sequence[Match]) -> Say:
    """Numbered choices (1…n) for the student to pick from, or a no-match reply."""
    if not matches:
        return Say("schools/no_match", {"query": query[:30]})
    items = [{"number": n, "name": m.school.name, "city": m.school.city} for n, m in enumerate(matches, 1)]
    return Say("schools/choices", {"query": query[:30], "items": items})


def choices_message(query: str, matches: Sequence[Match]) -> str:
    return render(choices_reply(query, matches))
