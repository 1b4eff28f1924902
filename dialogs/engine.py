"""The dialog engine: definitions as data, one ``transitions.Machine`` per definition, pure steps.

A step never awaits and never touches storage. The caller (handlers/dialog.py) runs the state's
*prepare* action before ``fire`` (validation, lookups, verification), and the recorded *effects*
after it (SQL writes), then saves the frame.

Each definition keeps one long-lived model on its machine; a step restores the frame's state onto it
with ``set_state`` and triggers. Nothing can interleave because nothing awaits, and no model is ever
added or removed per message: per-message ``add_model``/``remove_model`` left cyclic garbage and GC
pauses up to 101 ms in reference/perf-baselines.md §1, against none for ``set_state``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from transitions import Machine, MachineError

from dialogs.session import Frame
from dialogs.spec import Intent, Say

Expects = Literal["text", "choice", "confirm", "image", "none", "auto"]
YES_WORDS = frozenset({"确认", "确定", "是", "是的", "对", "好", "好的", "同意", "1", "y", "yes", "ok",
                       "使用这张", "使用", "用这张"})
NO_WORDS = frozenset({"修改", "否", "不", "不是", "不对", "不同意", "重填", "2", "n", "no", "重新上传", "重拍"})
TRIGGERS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "choice": ("choose", "text"),
    "confirm": ("yes", "no"),
    "image": ("image",),
    "none": (),  # waits for an outside event (paid, review result): any trigger will do
    "auto": ("auto",),  # no input: the prepare action runs as soon as the dialog arrives
}


@dataclass(frozen=True, slots=True)
class Input:
    """What the student sent, reduced to what dialogs understand."""

    kind: Literal["text", "image", "click"]
    text: str = ""  # message text, or the menu key of a click
    media_id: str = ""


@dataclass(frozen=True, slots=True)
class Effect:
    """A side effect a step asks for (run by the caller after the step, before saving)."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StateSpec:
    name: str
    expects: Expects = "text"
    prompt: str = ""  # template; default "<dialog>/<state>"
    options: tuple[str, ...] = ()  # fixed choices for expects="choice"
    options_from: str = ""  # or a data key holding the choices
    prepare: str = ""  # action run on the input before the trigger
    collects: tuple[str, ...] = ()  # data keys this state fills (dropped again on "back")
    back: bool = True
    cancel: bool = True
    max_retries: int = 5
    final: bool = False
    sample: Mapping[str, Any] = field(default_factory=dict)  # data for the template check
    hint: str = ""  # template shown when an input fits nothing here (default: by ``expects``)
    on_image: str = ""  # prepare action for a photo sent to a state that expects something else


@dataclass(frozen=True, slots=True)
class TransitionSpec:
    trigger: str
    source: str | tuple[str, ...]
    dest: str
    conditions: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "source": list(_names(self.source)), "dest": self.dest,
                "conditions": list(self.conditions), "unless": list(self.unless), "after": list(self.after)}


class DialogModel:
    """Conditions and callbacks of one dialog subclass this; they see ``data`` and ``payload``."""

    state: str

    def __init__(self) -> None:
        self.reset({}, {})

    def reset(self, data: dict[str, Any], payload: Mapping[str, Any]) -> None:
        self.data = data
        self.payload = dict(payload)
        self.replies: list[Intent] = []
        self.effects: list[Effect] = []
        self.quiet = False

    def say(self, template: str, **variables: Any) -> None:
        self.replies.append(Say(template, variables))

    def effect(self, name: str, /, **args: Any) -> None:
        self.effects.append(Effect(name, args))

    def keep(self, *keys: str) -> None:
        for key in keys:
            self.data[key] = self.payload[key]

    def ok(self) -> bool:
        return bool(self.payload.get("ok"))

    def explain(self) -> None:
        """Say why the input was refused (the prepare action put a template in the payload)."""
        if self.payload.get("error_template"):
            self.say(self.payload["error_template"], **self.payload.get("error", {}))


@dataclass(frozen=True)
class DialogSpec:
    name: str
    title: str  # shown to students in status lines and "switch?" questions
    version: int
    initial: str
    states: tuple[StateSpec, ...]
    transitions: tuple[TransitionSpec, ...]
    model: type[DialogModel] = DialogModel
    idle_timeout: int = 30 * 60
    reentry: Literal["ask", "restart"] = "ask"
    start: str = ""  # action that may pick the first state and data from durable facts
    entries: tuple[str, ...] = ()  # other states the start action may pick
    start_words: tuple[str, ...] = ()  # texts that start it from anywhere
    menu_keys: tuple[str, ...] = ()  # menu CLICK keys that start it
    track: bool = False  # record progress in SQL after every step (procedures)
    templates: Mapping[str, str] = field(default_factory=dict)  # inline prompts (procedure files)

    def state(self, name: str) -> StateSpec:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(f"{self.name}: no state {name!r}")

    def prompt_of(self, name: str) -> str:
        return self.state(name).prompt or f"{self.name}/{name}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What an input means in the current state: a trigger (maybe after a prepare action) or a hint."""

    trigger: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    prepare: str = ""
    hint: str = ""  # template explaining what the state expects, when the input fits nothing


@dataclass(slots=True)
class StepResult:
    replies: list[Intent] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    finished: bool = False


class _Runtime:
    def __init__(self, spec: DialogSpec) -> None:
        self.spec = spec
        self.model = spec.model()
        self.machine = Machine(
            model=self.model,
            states=[s.name for s in spec.states],
            transitions=[t.as_dict() for t in spec.transitions],
            initial=spec.initial,
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )


class Engine:
    def __init__(self, specs: Iterable[DialogSpec]) -> None:
        self.specs: dict[str, DialogSpec] = {}
        for spec in specs:
            problems = check_spec(spec)
            if problems:
                raise ValueError(f"dialog {spec.name!r}: " + "; ".join(problems))
            self.specs[spec.name] = spec
        self._runtimes = {name: _Runtime(spec) for name, spec in self.specs.items()}

    def models(self) -> list[int]:
        """How many models each machine holds (always 1: nothing is attached per message)."""
        return [len(rt.machine.models) for rt in self._runtimes.values()]

    def new_frame(self, name: str, now: float, state: str = "", data: Mapping[str, Any] | None = None) -> Frame:
        spec = self.specs[name]
        return Frame(dialog=name, version=spec.version, state=state or spec.initial, data=dict(data or {}),
                     entered_at=now, updated_at=now)

    def prompt(self, frame: Frame) -> Say:
        return _prompt(self.specs[frame.dialog], frame.state, frame.data, {})

    def is_auto(self, frame: Frame) -> bool:
        return self.specs[frame.dialog].state(frame.state).expects == "auto"

    def accepts(self, frame: Frame, trigger: str) -> bool:
        """Whether ``trigger`` (an outside event such as ``paid``) leads anywhere from here."""
        spec = self.specs.get(frame.dialog)
        if spec is None or not self.is_current(frame):
            return False
        return any(t.trigger == trigger and frame.state in _names(t.source) for t in spec.transitions)

    def templates(self) -> dict[str, str]:
        """Inline prompt templates of configured procedures, by template name."""
        merged: dict[str, str] = {}
        for spec in self.specs.values():
            merged.update(spec.templates)
        return merged

    def is_current(self, frame: Frame) -> bool:
        """False when the frame was saved by another definition version whose state no longer exists."""
        spec = self.specs.get(frame.dialog)
        return spec is not None and any(s.name == frame.state for s in spec.states)

    def interpret(self, frame: Frame, inp: Input) -> Decision:
        state = self.specs[frame.dialog].state(frame.state)
        if state.expects == "auto":
            return Decision("auto", {}, state.prepare)
        if inp.kind == "image" and (state.expects == "image" or state.on_image):
            return Decision("image", {"media_id": inp.media_id}, state.prepare if state.expects == "image"
                            else state.on_image)
        if state.expects == "image":
            return Decision(hint="common/expect_image")
        if state.expects == "none":
            return Decision(hint=state.hint or "common/expect_nothing")
        if inp.kind != "text":
            return Decision(hint="common/expect_text")
        text = inp.text.strip()
        if state.expects == "confirm":
            decision = _confirm(text, state)
            return Decision(hint=state.hint) if decision.hint and state.hint else decision
        if state.expects == "choice":
            return _choice(text, state, frame.data)
        return Decision("text", {"text": text}, state.prepare)

    def fire(self, frame: Frame, trigger: str, payload: Mapping[str, Any], now: float) -> StepResult:
        """Run one trigger on ``frame`` (updated in place only when the step succeeds)."""
        rt = self._runtimes[frame.dialog]
        model = rt.model
        model.reset(copy.deepcopy(frame.data), payload)
        rt.machine.set_state(frame.state, model=model)
        try:
            moved = model.trigger(trigger)  # type: ignore[attr-defined]  # added by transitions
        except MachineError:
            return StepResult([Say("common/expect_text", {}), self.prompt(frame)])
        if not moved:
            return StepResult([Say("common/expect_text", {}), self.prompt(frame)])
        return self._settle(rt.spec, frame, model, now)

    def _settle(self, spec: DialogSpec, frame: Frame, model: DialogModel, now: float) -> StepResult:
        old, new = frame.state, model.state
        replies = list(model.replies)
        if new == old:
            tries = frame.retries.get(old, 0) + 1
            frame.retries[old] = tries
            if tries >= spec.state(old).max_retries:
                replies.append(Say("common/too_many_tries", {}))
        else:
            frame.retries.pop(old, None)
            frame.push_history(old)
        frame.state, frame.data, frame.updated_at = new, model.data, now
        if not model.quiet and spec.state(new).expects != "auto":
            replies.append(_prompt(spec, new, frame.data, model.payload))
        return StepResult(replies, list(model.effects), finished=spec.state(new).final)

    def back(self, frame: Frame, now: float) -> bool:
        """Return to the previous state (no callbacks run); False when this state forbids it."""
        spec = self.specs[frame.dialog]
        # Auto states (requirements, conditions) ask nothing: back goes to the question before them.
        asked = [i for i, name in enumerate(frame.history) if spec.state(name).expects != "auto"]
        if not asked or not spec.state(frame.state).back:
            return False
        previous = frame.history[asked[-1]]
        del frame.history[asked[-1]:]
        for key in spec.state(previous).collects + spec.state(frame.state).collects:
            frame.data.pop(key, None)
        frame.state, frame.updated_at = previous, now
        return True

    def can_cancel(self, frame: Frame) -> bool:
        return self.specs[frame.dialog].state(frame.state).cancel

    def is_idle(self, frame: Frame, now: float) -> bool:
        return now - frame.updated_at > self.specs[frame.dialog].idle_timeout


def _prompt(spec: DialogSpec, state: str, data: Mapping[str, Any], payload: Mapping[str, Any]) -> Say:
    s = spec.state(state)
    options = list(s.options or data.get(s.options_from, []))
    return Say(spec.prompt_of(state), {"data": data, "payload": payload, "options": options})


def _names(source: str | tuple[str, ...]) -> tuple[str, ...]:
    return (source,) if isinstance(source, str) else source


def _confirm(text: str, state: StateSpec) -> Decision:
    word = text.lower()
    if word in YES_WORDS:
        return Decision("yes", {}, state.prepare)
    if word in NO_WORDS:
        return Decision("no", {})
    return Decision(hint="common/expect_confirm")


def _choice(text: str, state: StateSpec, data: Mapping[str, Any]) -> Decision:
    options = list(state.options or data.get(state.options_from, []))
    index = _pick(text, options)
    if index is not None:
        return Decision("choose", {"choice": options[index], "index": index}, state.prepare)
    if state.prepare and text and not text.isdigit():
        return Decision("text", {"text": text}, state.prepare)  # a typed answer instead of a number
    return Decision(hint="common/expect_choice")


def _pick(text: str, options: list[str]) -> int | None:
    number = text.rstrip(".、。 ")
    if number.isdigit() and 1 <= int(number) <= len(options):
        return int(number) - 1
    return options.index(text) if text in options else None


def check_spec(spec: DialogSpec) -> list[str]:
    """Problems that make a definition unusable; empty when it is sound."""
    names = [s.name for s in spec.states]
    problems = [f"duplicate state {n!r}" for n in set(names) if names.count(n) > 1]
    if spec.initial not in names:
        problems.append(f"initial state {spec.initial!r} is not declared")
    for t in spec.transitions:
        problems += [f"{t.trigger}: unknown state {s!r}" for s in (*_names(t.source), t.dest) if s not in names]
        for cb in (*t.conditions, *t.unless, *t.after):
            if not callable(getattr(spec.model, cb, None)):
                problems.append(f"{t.trigger}: {spec.model.__name__} has no method {cb!r}")
    for s in spec.states:
        if hasattr(spec.model, f"is_{s.name}") or hasattr(spec.model, s.name):
            problems.append(f"{s.name}: clashes with a {spec.model.__name__} attribute (transitions adds is_{s.name})")
        if s.expects == "choice" and not (s.options or s.options_from):
            problems.append(f"{s.name}: a choice needs options")
        accepted = {t.trigger for t in spec.transitions if s.name in _names(t.source)}
        wanted = set(TRIGGERS[s.expects]) or accepted
        if not s.final and not accepted & wanted:
            problems.append(f"{s.name}: no transition accepts its input ({s.expects})")
        if s.expects == "auto" and not s.prepare:
            problems.append(f"{s.name}: an auto state needs a prepare action")
    problems += _graph_problems(spec, names)
    return problems


def _graph_problems(spec: DialogSpec, names: list[str]) -> list[str]:
    edges: dict[str, set[str]] = {n: set() for n in names}
    for t in spec.transitions:
        for source in _names(t.source):
            edges.setdefault(source, set()).add(t.dest)
    reachable: set[str] = set()
    for entry in (spec.initial, *spec.entries):
        reachable |= _closure(entry, edges)
    problems = [f"{n}: unreachable from {spec.initial}" for n in names if n not in reachable]
    finals = {s.name for s in spec.states if s.final}
    for s in spec.states:
        if not s.final and not s.cancel and not (_closure(s.name, edges) & finals):
            problems.append(f"{s.name}: can neither finish nor be cancelled")
    return problems


def _closure(start: str, edges: Mapping[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def mermaid(spec: DialogSpec) -> str:
    """A Mermaid state diagram of the definition (docs/dialogs/<name>.mmd)."""
    lines = ["stateDiagram-v2", f"    %% {spec.name} v{spec.version}: {spec.title}"]
    lines += [f"    [*] --> {entry}" for entry in (spec.initial, *spec.entries)]
    for t in spec.transitions:
        guard = [*t.conditions, *(f"not {u}" for u in t.unless)]
        label = t.trigger + (f" [{' and '.join(guard)}]" if guard else "")
        lines += [f"    {s} --> {t.dest}: {label}" for s in _names(t.source)]
    lines += [f"    {s.name} --> [*]" for s in spec.states if s.final]
    return "\n".join(lines) + "\n"
