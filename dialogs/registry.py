"""Every dialog definition the product runs."""

from __future__ import annotations

from dialogs import bind, link_school
from dialogs.engine import DialogSpec, Engine

SPECS: tuple[DialogSpec, ...] = (bind.SPEC, link_school.SPEC)


def build_engine() -> Engine:
    return Engine(SPECS)
