"""Checks of a procedure file that need the bot's configuration: photo profiles and fees.

The parser (dialogs/procedure_parse.py) checks everything else. ``gradbot procedures check`` and
start-up (``ProcedureActions``) both run these, so a file naming a missing profile or fee never runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.services.payments.errors import UnknownFee
from bot.services.payments.fees import FeeTable
from bot.services.photos import PhotoProfile
from dialogs.procedure import Procedure
from dialogs.procedure_parse import step_line


def procedure_problems(proc: Procedure, profiles: Mapping[str, PhotoProfile], fees: FeeTable) -> list[str]:
    problems: list[str] = []
    for index, step in enumerate(proc.steps):
        where = step_line(proc.source, index) if proc.source else proc.name
        if step["type"] == "photo" and str(step.get("profile", "chsi")) not in profiles:
            problems.append(f"{where}: unknown photo profile {step.get('profile')!r} "
                            f"(one of {', '.join(sorted(profiles))})")
        if step["type"] == "pay":
            procedure = str(step.get("fee_procedure", proc.name))
            try:
                fees.find(procedure, str(step["item"]), proc.school)
            except UnknownFee:
                problems.append(f"{where}: unknown fee item {procedure}/{step['item']} for school {proc.school} "
                                f"(add it to bot/services/payments/fees.toml)")
    return problems
