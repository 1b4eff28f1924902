"""Every dialog definition is sound, every prompt renders, and the committed diagrams are current."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands.dialogs import expected_diagrams
from bot.render import Renderer
from dialogs.engine import DialogModel, DialogSpec, Engine, StateSpec, TransitionSpec, check_spec
from dialogs.registry import build_engine

ENGINE = build_engine()
SPECS = tuple(ENGINE.specs.values())
SAMPLE = {"title": "图像采集", "opens": "2025-03-11", "closes": "2025-05-05", "eligible": "成人教育",
          "pay_url": "http://127.0.0.1/pay/t", "pay_amount_yuan": "13.50", "pay_description": "图像采集费",
          "fixed_url": "http://127.0.0.1/files/t"}

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_definition_is_sound(spec: DialogSpec) -> None:
    assert check_spec(spec) == []


@pytest.mark.parametrize(
    ("spec", "state"), [(spec, state) for spec in SPECS for state in spec.states if state.expects != "auto"],
    ids=lambda v: getattr(v, "name", ""),
)
def test_every_prompt_renders_from_its_sample(spec: DialogSpec, state: StateSpec) -> None:
    options = list(state.options or state.sample.get(state.options_from, []))
    renderer = Renderer()
    renderer.add_templates(ENGINE.templates())
    data = {**SAMPLE, **state.sample}
    text = renderer.render(spec.prompt_of(state.name), data=data, payload={}, options=options)
    assert text.strip()
    assert "{{" not in text and "None" not in text


def test_diagrams_in_docs_are_current() -> None:
    for name, text in expected_diagrams().items():
        path = ROOT / "docs" / "dialogs" / name
        assert path.exists(), f"run `gradbot dialogs diagram` to create {path}"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `gradbot dialogs diagram`"


class Broken(DialogModel):
    def fine(self) -> bool:
        return True


def test_check_spec_names_each_problem() -> None:
    spec = DialogSpec(
        name="broken", title="坏的", version=1, initial="start", model=Broken,
        states=(
            StateSpec("start"),
            StateSpec("island", expects="confirm"),
            StateSpec("stuck", expects="choice", cancel=False),
            StateSpec("end", final=True, expects="none"),
        ),
        transitions=(
            TransitionSpec("text", "start", "stuck", conditions=("fine", "missing_condition")),
            TransitionSpec("choose", "stuck", "stuck"),
            TransitionSpec("text", "start", "nowhere"),
        ),
    )
    problems = " | ".join(check_spec(spec))
    assert "has no method 'missing_condition'" in problems
    assert "unknown state 'nowhere'" in problems
    assert "stuck: a choice needs options" in problems
    assert "island: no transition accepts its input" in problems
    assert "island: unreachable" in problems and "end: unreachable" in problems
    assert "stuck: can neither finish nor be cancelled" in problems
    with pytest.raises(ValueError, match="broken"):
        Engine([spec])
