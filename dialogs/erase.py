"""删除我的信息: what we hold and what must be kept → confirm → erased (the effect runs after the step).

The start action looks up what is held (``erase_start``); with nothing to delete the dialog says so
and ends. The erasure itself is the ``erase_student`` effect (bot/services/privacy.py): if it fails,
the student sees the "busy" reply instead of a false "deleted".
"""

from __future__ import annotations

from dialogs.engine import DialogModel, DialogSpec, StateSpec, TransitionSpec

SAMPLE = {"held": ["实名信息", "学校信息", "2 张照片", "办理进度"], "paid_orders": 1}


class Erase(DialogModel):
    def erase(self) -> None:
        self.effect("erase_student")


SPEC = DialogSpec(
    name="erase",
    title="删除我的信息",
    version=1,
    initial="confirm",
    start="erase_start",
    entries=("nothing",),
    start_words=("删除我的信息", "删除我的数据", "删除个人信息"),
    model=Erase,
    states=(
        StateSpec("confirm", expects="confirm", back=False, sample=SAMPLE),
        StateSpec("erased", final=True, expects="none", sample=SAMPLE),
        StateSpec("kept", final=True, expects="none"),
        StateSpec("nothing", final=True, expects="none"),
    ),
    transitions=(
        TransitionSpec("yes", "confirm", "erased", after=("erase",)),
        TransitionSpec("no", "confirm", "kept"),
    ),
)
