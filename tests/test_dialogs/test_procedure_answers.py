"""Which values of a procedure's data are the student's answers, decided from its definition."""

from __future__ import annotations

import pytest

from dialogs.procedure import Procedure, compile_procedure, document_slots, parse_procedure
from dialogs.registry import load_procedures

PROCEDURES = load_procedures()


@pytest.mark.parametrize("procedure", PROCEDURES, ids=[p.name for p in PROCEDURES])
def test_answers_are_what_the_asking_states_collect_except_file_ids(procedure: Procedure) -> None:
    """Kept in step with the compiler: every key a state collects is an answer, or a stored file's id."""
    spec = compile_procedure(procedure)
    collected = {key for state in spec.states for key in state.collects}
    files = {s.state for step in procedure.steps_of("documents") for s in document_slots(step) if s.role != "kind"}
    assert {key for key, _ in procedure.answer_fields()} == collected - files


def test_review_answers_keep_answers_labelled_and_drop_bookkeeping() -> None:
    procedure = parse_procedure({"name": "p", "title": "办理", "steps": [
        {"type": "text", "id": "code", "status": "填写采集码", "prompt": "?"},
        {"type": "text", "id": "note", "prompt": "?", "optional": True},
        {"type": "credits", "id": "courses", "status": "选择课程", "prompt": "?", "min_total": 3,
         "courses": [{"name": "英语", "credits": 2}, {"name": "日语", "credits": 2}]},
        {"type": "photo", "id": "photo", "prompt": "?"},
        {"type": "review", "id": "review"},
        {"type": "done", "prompt": "ok"},
    ]})
    data = {"title": "办理", "opens": "2025-03-01", "closes": "2025-05-31", "code": "AB12", "note": "",
            "courses": ["英语", "日语"], "courses__total": 4, "photo_id": 7, "fixed_photo_id": 8,
            "fixed_url": "https://x/files/sealed", "pay_url": "https://x/pay/t", "rejections": 1, "locked": True}
    assert procedure.review_answers(data) == [
        {"kind": "answer", "name": "code", "label": "填写采集码", "value": "AB12"},
        {"kind": "answer", "name": "note", "label": "note", "value": ""},
        {"kind": "answer", "name": "courses", "label": "选择课程", "value": "英语、日语"},
        {"kind": "answer", "name": "courses__total", "label": "选择课程（学分合计）", "value": "4"},
    ]
