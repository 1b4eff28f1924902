"""实名绑定: privacy consent → ID type → name → ID number → confirm (masked) → verification.

Validation and verification run in the caller's prepare actions (check_name, check_id,
verify_identity); this module only decides where each answer leads.
"""

from __future__ import annotations

from dialogs.engine import DialogModel, DialogSpec, StateSpec, TransitionSpec

ID_TYPES = ("居民身份证", "港澳台居民居住证", "港澳居民来往内地通行证", "台湾居民来往大陆通行证", "护照")
MANAGE = ("修改绑定", "解除绑定", "保持不变")
SAMPLE = {"id_type": "居民身份证", "name": "张三", "id_number": "430102199901011234",
          "bound_name": "张*", "bound_id": "4301**********1234", "bound_type": "居民身份证", "verified": "match"}


class Bind(DialogModel):
    def keep_type(self) -> None:
        self.data["id_type"] = self.payload["choice"]

    def keep_name(self) -> None:
        self.data["name"] = self.payload["name"]

    def keep_id(self) -> None:
        self.data["id_number"] = self.payload["id_number"]

    def consented(self) -> None:
        self.effect("record_consent")

    def outcome_match(self) -> bool:
        return self.payload.get("outcome") == "match"

    def outcome_pending(self) -> bool:
        return self.payload.get("outcome") == "pending"

    def outcome_mismatch(self) -> bool:
        return self.payload.get("outcome") == "mismatch"

    def outcome_taken(self) -> bool:
        return self.payload.get("outcome") == "taken"

    def save(self) -> None:
        # The SQL record keeps the number encrypted; the session record (Redis) drops it now.
        self.effect("save_binding", verified=self.payload["verified"], id_type=self.data["id_type"],
                    name=self.data["name"], id_number=self.data.pop("id_number"))

    def mismatch(self) -> None:
        self.say("bind/mismatch")
        self.data.pop("name", None)
        self.data.pop("id_number", None)

    def try_later(self) -> None:
        self.explain()

    def forget_inputs(self) -> None:
        for key in ("id_type", "name", "id_number"):
            self.data.pop(key, None)

    def wants_change(self) -> bool:
        return self.payload.get("index") == 0

    def wants_unbind(self) -> bool:
        return self.payload.get("index") == 1

    def unbind(self) -> None:
        self.effect("unbind")


_CONFIRMED = ("confirm",)
SPEC = DialogSpec(
    name="bind",
    title="实名认证",
    version=1,
    initial="consent",
    start="bind_start",
    start_words=("实名认证", "实名", "绑定", "认证"),
    menu_keys=("BIND",),
    entries=("bound",),
    model=Bind,
    states=(
        StateSpec("consent", expects="confirm", back=False, hint="bind/consent_hint"),
        StateSpec("choose_type", expects="choice", options=ID_TYPES, collects=("id_type",)),
        StateSpec("ask_name", prepare="check_name", collects=("name",), sample=SAMPLE),
        StateSpec("ask_id", prepare="check_id", collects=("id_number",), sample=SAMPLE),
        StateSpec("confirm", expects="confirm", prepare="verify_identity", sample=SAMPLE),
        StateSpec("bound", expects="choice", options=MANAGE, back=False, sample=SAMPLE),
        StateSpec("confirm_unbind", expects="confirm", sample=SAMPLE),
        StateSpec("done", final=True, expects="none", sample=SAMPLE),
        StateSpec("pending_review", final=True, expects="none", sample=SAMPLE),
        StateSpec("taken", final=True, expects="none"),
        StateSpec("declined", final=True, expects="none"),
        StateSpec("unbound", final=True, expects="none"),
        StateSpec("kept", final=True, expects="none"),
    ),
    transitions=(
        TransitionSpec("yes", "consent", "choose_type", after=("consented",)),
        TransitionSpec("no", "consent", "declined"),
        TransitionSpec("choose", "choose_type", "ask_name", after=("keep_type",)),
        TransitionSpec("text", "ask_name", "ask_id", conditions=("ok",), after=("keep_name",)),
        TransitionSpec("text", "ask_name", "ask_name", unless=("ok",), after=("explain",)),
        TransitionSpec("text", "ask_id", "confirm", conditions=("ok",), after=("keep_id",)),
        TransitionSpec("text", "ask_id", "ask_id", unless=("ok",), after=("explain",)),
        TransitionSpec("yes", "confirm", "done", conditions=("outcome_match",), after=("save",)),
        TransitionSpec("yes", "confirm", "pending_review", conditions=("outcome_pending",), after=("save",)),
        TransitionSpec("yes", "confirm", "ask_name", conditions=("outcome_mismatch",), after=("mismatch",)),
        TransitionSpec("yes", "confirm", "taken", conditions=("outcome_taken",), after=("forget_inputs",)),
        TransitionSpec("yes", "confirm", "confirm", after=("try_later",)),
        TransitionSpec("no", "confirm", "choose_type", after=("forget_inputs",)),
        TransitionSpec("choose", "bound", "choose_type", conditions=("wants_change",)),
        TransitionSpec("choose", "bound", "confirm_unbind", conditions=("wants_unbind",)),
        TransitionSpec("choose", "bound", "kept"),
        TransitionSpec("yes", "confirm_unbind", "unbound", after=("unbind",)),
        TransitionSpec("no", "confirm_unbind", "kept"),
    ),
)
