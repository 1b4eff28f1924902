"""Fees as data (``fees.toml``): what a procedure charges at which school, in integer fen."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bot.services.payments.errors import UnknownFee

ANY_SCHOOL = "*"
_ITEM = re.compile(r"^[a-z0-9_]{1,64}$")
_ATTEMPT = re.compile(r"_\d+$")


@dataclass(frozen=True, slots=True)
class Fee:
    procedure: str
    item: str
    school: str
    amount_fen: int
    description: str
    due: str = ""


class FeeTable:
    def __init__(self, fees: list[Fee]) -> None:
        self._fees = {(f.procedure, f.item, f.school): f for f in fees}
        if len(self._fees) != len(fees):
            raise ValueError("fees: duplicate (procedure, item, school)")

    def __iter__(self) -> Any:
        return iter(self._fees.values())

    def find(self, procedure: str, item: str, school: str = ANY_SCHOOL) -> Fee:
        """The school's own fee, else the default one; UnknownFee when neither exists."""
        fee = self._lookup(procedure, item, school)
        if fee is None and _ATTEMPT.search(item):  # photo_reverify_2: the second re-verification
            fee = self._lookup(procedure, _ATTEMPT.sub("", item), school)
        if fee is None:
            raise UnknownFee(f"no fee for {procedure}/{item}")
        return fee

    def _lookup(self, procedure: str, item: str, school: str) -> Fee | None:
        return self._fees.get((procedure, item, school)) or self._fees.get((procedure, item, ANY_SCHOOL))

    def by_item(self, procedure: str, item: str) -> list[Fee]:
        return [f for f in self._fees.values() if f.procedure == procedure and f.item == item]


def yuan(fen: int) -> str:
    """Money is integer fen everywhere; this is the one place it becomes yuan, for display."""
    return f"{fen // 100}.{fen % 100:02d}"


def load_fees(path: Path | None = None) -> FeeTable:
    text = path.read_text(encoding="utf-8") if path else (
        resources.files("bot.services.payments").joinpath("fees.toml").read_text(encoding="utf-8"))
    return FeeTable([_fee(entry) for entry in tomllib.loads(text).get("fee", [])])


def _fee(entry: dict[str, Any]) -> Fee:
    fee = Fee(str(entry["procedure"]), str(entry["item"]), str(entry.get("school", ANY_SCHOOL)),
              entry["amount_fen"], str(entry["description"]), str(entry.get("due", "")))
    if not isinstance(fee.amount_fen, int) or isinstance(fee.amount_fen, bool) or fee.amount_fen <= 0:
        raise ValueError(f"fees: {fee.item}: amount_fen must be a positive integer (fen)")
    if not _ITEM.match(fee.item) or not _ITEM.match(fee.procedure):
        raise ValueError(f"fees: {fee.item}: procedure and item are lower-case letters, digits and _")
    if not 1 <= len(fee.description) <= 127:
        raise ValueError(f"fees: {fee.item}: description must be 1-127 characters")
    return fee
