"""The engine on its own: pure steps over the real definitions, no storage, no HTTP."""

from __future__ import annotations

from dialogs.engine import Engine, Input
from dialogs.registry import build_engine
from dialogs.spec import Say

NOW = 1_700_000_000.0


def _templates(replies: list[object]) -> list[str]:
    return [r.template for r in replies if isinstance(r, Say)]


def test_choice_accepts_number_or_label_and_refuses_others() -> None:
    engine = build_engine()
    frame = engine.new_frame("bind", NOW, "choose_type")
    assert engine.interpret(frame, Input("text", "2")).payload == {"choice": "港澳台居民居住证", "index": 1}
    assert engine.interpret(frame, Input("text", "护照")).payload["index"] == 4
    assert engine.interpret(frame, Input("text", "9")).hint == "common/expect_choice"
    assert engine.interpret(frame, Input("image", media_id="m")).hint == "common/expect_text"


def test_confirm_words() -> None:
    engine = build_engine()
    frame = engine.new_frame("bind", NOW, "confirm")
    assert engine.interpret(frame, Input("text", "确认")).trigger == "yes"
    assert engine.interpret(frame, Input("text", "确认")).prepare == "verify_identity"
    assert engine.interpret(frame, Input("text", "修改")).trigger == "no"
    assert engine.interpret(frame, Input("text", "也许")).hint == "common/expect_confirm"


def test_a_refused_input_stays_explains_and_counts_retries() -> None:
    engine = build_engine()
    frame = engine.new_frame("bind", NOW, "ask_id", {"id_type": "居民身份证", "name": "张三"})
    refused = {"ok": False, "error_template": "identity/id_problem", "error": {"problem": "bad_checksum"}}
    result = engine.fire(frame, "text", refused, NOW)
    assert frame.state == "ask_id" and frame.retries == {"ask_id": 1}
    assert _templates(result.replies) == ["identity/id_problem", "bind/ask_id"]
    for _ in range(4):
        result = engine.fire(frame, "text", refused, NOW)
    assert "common/too_many_tries" in _templates(result.replies)


def test_happy_path_records_effects_and_drops_the_number_from_the_session() -> None:
    engine = build_engine()
    frame = engine.new_frame("bind", NOW)
    assert [e.name for e in engine.fire(frame, "yes", {}, NOW).effects] == ["record_consent"]
    engine.fire(frame, "choose", {"choice": "居民身份证", "index": 0}, NOW)
    engine.fire(frame, "text", {"ok": True, "name": "张三"}, NOW)
    engine.fire(frame, "text", {"ok": True, "id_number": "430102199901011235"}, NOW)
    assert frame.state == "confirm" and frame.data["id_number"] == "430102199901011235"
    result = engine.fire(frame, "yes", {"outcome": "match", "verified": "match"}, NOW + 5)
    assert result.finished and frame.state == "done" and frame.updated_at == NOW + 5
    (effect,) = result.effects
    assert effect.name == "save_binding" and effect.args["id_number"] == "430102199901011235"
    assert "id_number" not in frame.data
    assert frame.history == ["consent", "choose_type", "ask_name", "ask_id", "confirm"]


def test_verification_outcomes_lead_to_their_states() -> None:
    engine = build_engine()
    data = {"id_type": "居民身份证", "name": "张三", "id_number": "430102199901011235"}
    for outcome, state in [("pending", "pending_review"), ("mismatch", "ask_name"), ("taken", "taken"),
                           ("retry", "confirm")]:
        frame = engine.new_frame("bind", NOW, "confirm", dict(data))
        engine.fire(frame, "yes", {"outcome": outcome, "verified": "pending"}, NOW)
        assert frame.state == state, outcome
    assert "name" not in frame.data or frame.state == "confirm"


def test_back_restores_the_previous_state_and_drops_what_it_collected() -> None:
    engine = build_engine()
    frame = engine.new_frame("link_school", NOW)
    engine.fire(frame, "text", {"ok": True, "province": "湖南省"}, NOW)
    engine.fire(frame, "text", {"ok": True, "city": "长沙市"}, NOW)
    assert frame.state == "school"
    assert engine.back(frame, NOW) and frame.state == "city" and "city" not in frame.data
    assert engine.back(frame, NOW) and frame.state == "province" and frame.data == {}
    assert not engine.back(frame, NOW)


def test_ambiguous_school_offers_numbered_choices_then_takes_the_pick() -> None:
    engine = build_engine()
    frame = engine.new_frame("link_school", NOW, "school", {"province": "湖南省", "city": "长沙市"})
    matches = [{"code": "1", "name": "湖南师范大学"}, {"code": "2", "name": "湖南农业大学"}]
    result = engine.fire(frame, "text", {"text": "湖南", "matches": matches}, NOW)
    assert frame.state == "pick_school" and result.replies[-1].variables["options"] == ["湖南师范大学", "湖南农业大学"]
    decision = engine.interpret(frame, Input("text", "2"))
    engine.fire(frame, decision.trigger, decision.payload, NOW)
    assert frame.state == "education_type" and frame.data["school_code"] == "2" and "candidates" not in frame.data


def test_no_model_is_attached_per_step() -> None:
    engine = Engine(build_engine().specs.values())
    frame = engine.new_frame("link_school", NOW)
    for _ in range(1000):
        engine.fire(frame, "text", {"ok": False}, NOW)
    assert engine.models() == [1] * len(engine.specs)


def test_unknown_trigger_for_the_state_reprompts_without_moving() -> None:
    engine = build_engine()
    frame = engine.new_frame("bind", NOW, "ask_name")
    result = engine.fire(frame, "yes", {}, NOW)
    assert frame.state == "ask_name" and _templates(result.replies) == ["common/expect_text", "bind/ask_name"]


def test_idle_detection_uses_the_definition_timeout() -> None:
    engine = build_engine()
    frame = engine.new_frame("bind", NOW)
    assert not engine.is_idle(frame, NOW + 29 * 60)
    assert engine.is_idle(frame, NOW + 31 * 60)
