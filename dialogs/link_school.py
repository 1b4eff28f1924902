"""关联学校: province → city → school (fuzzy, numbered when ambiguous) → education type → level →
cohort → confirm. Matching and parsing run in the caller's prepare actions."""

from __future__ import annotations

from dialogs.engine import DialogModel, DialogSpec, StateSpec, TransitionSpec

EDUCATION_TYPES = ("成人教育", "自学考试", "网络教育", "开放教育", "普通全日制")
LEVELS = ("专科", "本科", "专升本")
SAMPLE = {"province": "湖南省", "city": "长沙市", "school_name": "湖南师范大学", "school_code": "4143010542",
          "candidates": ["湖南师范大学", "湖南农业大学"], "education_type": "成人教育", "level": "本科",
          "cohort": "2022级", "purpose": "学位申请", "current": "湖南师范大学 · 成人教育 本科 2022级"}


class LinkSchool(DialogModel):
    def keep_province(self) -> None:
        self.data["province"] = self.payload["province"]

    def keep_city(self) -> None:
        self.data["city"] = self.payload["city"]

    def one(self) -> bool:
        return len(self.payload.get("matches", [])) == 1

    def several(self) -> bool:
        return len(self.payload.get("matches", [])) > 1

    def picked(self) -> bool:
        return "index" in self.payload

    def keep_school(self) -> None:
        match = self.payload["matches"][0]
        self.data["school_code"], self.data["school_name"] = match["code"], match["name"]
        self._forget_candidates()

    def keep_candidates(self) -> None:
        matches = self.payload["matches"]
        self.data["candidates"] = [m["name"] for m in matches]
        self.data["candidate_codes"] = [m["code"] for m in matches]

    def keep_pick(self) -> None:
        i = self.payload["index"]
        self.data["school_code"] = self.data["candidate_codes"][i]
        self.data["school_name"] = self.data["candidates"][i]
        self._forget_candidates()

    def _forget_candidates(self) -> None:
        self.data.pop("candidates", None)
        self.data.pop("candidate_codes", None)

    def keep_type(self) -> None:
        self.data["education_type"] = self.payload["choice"]

    def keep_level(self) -> None:
        self.data["level"] = self.payload["choice"]

    def keep_cohort(self) -> None:
        self.data["cohort"], self.data["purpose"] = self.payload["cohort"], self.payload["purpose"]

    def save(self) -> None:
        self.effect("save_link")

    def start_over(self) -> None:
        self.data.clear()


SPEC = DialogSpec(
    name="link_school",
    title="关联学校",
    version=1,
    initial="province",
    start="link_start",
    start_words=("关联学校",),
    menu_keys=("LINK_SCHOOL",),
    entries=("linked",),
    model=LinkSchool,
    states=(
        StateSpec("linked", expects="confirm", back=False, sample=SAMPLE),
        StateSpec("province", prepare="match_province", collects=("province",), sample=SAMPLE),
        StateSpec("city", prepare="match_city", collects=("city",), sample=SAMPLE),
        StateSpec("school", prepare="match_school", collects=("school_code", "school_name"), sample=SAMPLE),
        StateSpec("pick_school", expects="choice", options_from="candidates", prepare="match_school",
                  collects=("school_code", "school_name"), sample=SAMPLE),
        StateSpec("education_type", expects="choice", options=EDUCATION_TYPES, collects=("education_type",),
                  sample=SAMPLE),
        StateSpec("level", expects="choice", options=LEVELS, collects=("level",), sample=SAMPLE),
        StateSpec("cohort", prepare="parse_cohort", collects=("cohort", "purpose"), sample=SAMPLE),
        StateSpec("confirm", expects="confirm", sample=SAMPLE),
        StateSpec("done", final=True, expects="none", sample=SAMPLE),
        StateSpec("kept", final=True, expects="none", sample=SAMPLE),
    ),
    transitions=(
        TransitionSpec("yes", "linked", "province", after=("start_over",)),
        TransitionSpec("no", "linked", "kept"),
        TransitionSpec("text", "province", "city", conditions=("ok",), after=("keep_province",)),
        TransitionSpec("text", "province", "province", unless=("ok",), after=("explain",)),
        TransitionSpec("text", "city", "school", conditions=("ok",), after=("keep_city",)),
        TransitionSpec("text", "city", "city", unless=("ok",), after=("explain",)),
        TransitionSpec("text", ("school", "pick_school"), "education_type", conditions=("one",),
                       after=("keep_school",)),
        TransitionSpec("text", ("school", "pick_school"), "pick_school", conditions=("several",),
                       after=("keep_candidates",)),
        TransitionSpec("text", "school", "school", after=("explain",)),
        TransitionSpec("text", "pick_school", "pick_school", after=("explain",)),
        TransitionSpec("choose", "pick_school", "education_type", conditions=("picked",), after=("keep_pick",)),
        TransitionSpec("choose", "education_type", "level", after=("keep_type",)),
        TransitionSpec("choose", "level", "cohort", after=("keep_level",)),
        TransitionSpec("text", "cohort", "confirm", conditions=("ok",), after=("keep_cohort",)),
        TransitionSpec("text", "cohort", "cohort", unless=("ok",), after=("explain",)),
        TransitionSpec("yes", "confirm", "done", after=("save",)),
        TransitionSpec("no", "confirm", "province", after=("start_over",)),
    ),
)
