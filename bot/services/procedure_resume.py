"""Where a procedure picks up again from durable facts (``procedures.state`` and its answers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dialogs.procedure import Procedure
from storage.sql.links import SchoolLink

RESTART_SUFFIXES = ("__declined", "__refused", "__unmet", "__later")


def eligible(proc: Procedure, link: SchoolLink) -> bool:
    """The student's school link fits the procedure's school and its eligibility lists."""
    if proc.school != "*" and link.school_code != proc.school:
        return False
    facts = {"education_type": link.education_type, "level": link.level}
    return all(facts.get(key, "") in allowed for key, allowed in proc.eligible.items())


def resume_state(proc: Procedure, state: str, answers: Mapping[str, Any]) -> str | None:
    """The state to resume in, or None to start afresh.

    Finished: the last PDF again (a fresh link), else the done text. Waiting for a review: that
    wait; waiting for a payment or a PDF's release: that step again (a fresh link, the date
    re-checked). Past a locking confirm, a payment or a review: the step it stopped in, since
    nothing before it may change (or be paid or reviewed again).
    Anything else starts again with the answers kept.
    """
    if state == "done":
        pdfs = proc.steps_of("pdf")
        return str(pdfs[-1]["id"]) if pdfs else "done"
    if state.endswith("__closed"):
        return state
    step = proc.step_of_state(state)
    if step is None or state.endswith(RESTART_SUFFIXES):
        return None
    if state.endswith("__wait"):
        return state if step["type"] in ("review", "check") else str(step["id"])
    if answers.get("locked") or _past_a_milestone(proc, str(step["id"])):
        return str(step["id"])
    return None


def _past_a_milestone(proc: Procedure, step_id: str) -> bool:
    """A payment or a review lies behind this step: durable facts the student must not redo."""
    ids = [s["id"] for s in proc.steps]
    return any(s["type"] in ("pay", "review") for s in proc.steps[:ids.index(step_id)])
