"""Procedures as configuration: a school's TOML file compiled into one dialog definition.

A procedure names its steps (bind, link_school, info, text, choice, documents, credits, check, photo,
confirm, pay, review, pdf, done), its window, its eligibility and its texts. docs/procedures.md
describes every step type and key. This module is the public face; the parts live in
``procedure_types`` (values), ``procedure_parse`` (reading and validating), ``procedure_steps`` and
``procedure_more`` (compiling) and ``procedure_model`` (the dialog model's generic callbacks).
"""

from __future__ import annotations

from dialogs.procedure_model import ProcedureModel
from dialogs.procedure_parse import load_procedure, parse_procedure, when_tests
from dialogs.procedure_steps import compile_procedure
from dialogs.procedure_types import (
    STEP_TYPES,
    DocumentSlot,
    Procedure,
    ProcedureError,
    document_slots,
    prompt_name,
)

__all__ = ["STEP_TYPES", "DocumentSlot", "Procedure", "ProcedureError", "ProcedureModel", "compile_procedure",
           "document_slots", "load_procedure", "parse_procedure", "prompt_name", "when_tests"]
