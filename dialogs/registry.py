"""Every dialog definition the product runs: the built-in dialogs and the configured procedures."""

from __future__ import annotations

from pathlib import Path

from dialogs import bind, erase, link_school
from dialogs.engine import DialogSpec, Engine
from dialogs.procedure import Procedure, compile_procedure, load_procedure

SPECS: tuple[DialogSpec, ...] = (bind.SPEC, link_school.SPEC, erase.SPEC)
BUILTIN_PROCEDURES = Path(__file__).parent / "procedures"


def procedure_files(extra_dir: Path | None = None) -> list[Path]:
    files = sorted(BUILTIN_PROCEDURES.glob("*.toml"))
    if extra_dir is not None:
        files += sorted(extra_dir.glob("*.toml"))
    return files


def load_procedures(extra_dir: Path | None = None) -> list[Procedure]:
    """Every procedure file; a later file with the same name replaces an earlier one (school overrides)."""
    found: dict[str, Procedure] = {}
    for path in procedure_files(extra_dir):
        procedure = load_procedure(path)
        found[procedure.name] = procedure
    return list(found.values())


def build_engine(procedures: list[Procedure] | None = None) -> Engine:
    compiled = [compile_procedure(p) for p in (procedures if procedures is not None else load_procedures())]
    return Engine((*SPECS, *compiled))
