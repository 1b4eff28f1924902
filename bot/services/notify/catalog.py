"""What the console needs to know about each configured procedure: title, window, fees that count as
"paid", and the re-verification fee a rejected student pays (if the procedure charges one)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from bot.services.payments.errors import UnknownFee
from bot.services.payments.fees import FeeTable, yuan
from dialogs.procedure import Procedure
from storage.sql import windows
from storage.sql.db import Database


@dataclass(frozen=True, slots=True)
class ProcedureInfo:
    name: str
    title: str
    school: str
    opens: date | None
    closes: date | None
    orders: tuple[tuple[str, str], ...]  # (order procedure, item) pairs that mean "paid"
    reverify_fee_yuan: str = ""  # charged again after a rejection; empty when not


def describe(procedure: Procedure, fees: FeeTable) -> ProcedureInfo:
    pays = [s for s in procedure.steps if s.get("type") == "pay"]
    orders = tuple((str(s.get("fee_procedure", procedure.name)), str(s["item"])) for s in pays)
    reverify = ""
    for step in pays:
        if step.get("per_attempt"):
            try:
                fee = fees.find(str(step.get("fee_procedure", procedure.name)), str(step["item"]), procedure.school)
            except UnknownFee:
                continue
            reverify = yuan(fee.amount_fen)
    return ProcedureInfo(procedure.name, procedure.title, procedure.school, procedure.opens, procedure.closes,
                         orders, reverify)


def build_catalog(procedures: Iterable[Procedure], fees: FeeTable) -> dict[str, ProcedureInfo]:
    return {p.name: describe(p, fees) for p in procedures}


def titles(catalog: Mapping[str, ProcedureInfo]) -> dict[str, str]:
    return {name: info.title for name, info in catalog.items()}


async def seed_windows(db: Database, catalog: Mapping[str, ProcedureInfo]) -> int:
    """Give every procedure whose file names a window a row in ``procedure_windows`` (admins edit it
    there afterwards; an existing row is never overwritten)."""
    added = 0
    async with db.begin() as conn:
        for info in catalog.values():
            if info.opens is None or info.closes is None:
                continue
            school = info.school or windows.ANY_SCHOOL
            if await windows.find_exact(conn, info.name, school, windows.ANY_COHORT) is None:
                await windows.put(conn, procedure=info.name, school_code=school, opens=info.opens,
                                  closes=info.closes, actor=windows.SEEDED_BY)
                added += 1
    return added
