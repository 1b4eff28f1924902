"""``gradbot procedures check|list|show``: every shipped file passes; each kind of mistake a school can
make is reported as ``file:line: message`` with exit code 1; start-up refuses the same files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.render import Renderer
from bot.services.container import open_services
from dialogs.procedure import ProcedureError
from dialogs.registry import BUILTIN_PROCEDURES

GOOD = """name = "test_proc"
title = "测试"
start_words = ["测试办理"]

[[steps]]
type = "bind"

[[steps]]
type = "text"
id = "code"
prompt = "请发送编号："

[[steps]]
type = "photo"
id = "photo"
prompt = "请发送照片"
profile = "chsi"

[[steps]]
type = "pay"
id = "fee"
item = "photo_collection"
fee_procedure = "photo"

[[steps]]
type = "review"
id = "review"
on_reject = "photo"

[[steps]]
type = "done"
prompt = "完成"
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "school.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(text: str, needle: str, occurrence: int = 0) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), 1) if line.strip().startswith(needle)]
    return lines[occurrence]


def test_every_shipped_procedure_passes_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(BUILTIN_PROCEDURES.glob("*.toml"))
    assert main(["procedures", "check", *map(str, files)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok: ") == len(files) and "shanxi_zikao_graduation.toml" in out


BROKEN = [
    # (what the school got wrong, replace this, with this, the step whose line is named, message part)
    ("unknown step type", 'type = "text"', 'type = "txt"', 1, "unknown step type 'txt'"),
    ("missing text", 'prompt = "请发送编号："', 'status = "编号"', 1, "needs prompt"),
    ("misspelt key", 'prompt = "请发送编号："', 'promt = "请发送编号："', 1, "unknown key 'promt'"),
    ("impossible order", 'on_reject = "photo"', 'on_reject = "later"', 4, "must name an earlier step"),
    ("condition on a later answer", 'id = "code"', 'id = "code"\nwhen = { field = "fee", equals = "x" }', 1,
     "when field 'fee' must be an earlier step"),
    ("unknown photo profile", 'profile = "chsi"', 'profile = "passport-uk"', 2, "unknown photo profile"),
    ("unknown fee item", 'item = "photo_collection"', 'item = "tuition"', 3, "unknown fee item photo/tuition"),
    ("broken template", 'prompt = "请发送编号："', 'prompt = "{% if data.x %}请发送编号："', 1, "not a valid template"),
    ("template naming nothing", 'prompt = "请发送编号："', 'prompt = "{{ data.no_such_answer }}"', 1,
     "does not render"),
    ("state name too long", 'id = "photo"', 'id = "a_very_long_photo_step_name"', 2, "longer than 32"),
]


@pytest.mark.parametrize(("case", "old", "new", "step", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_file_names_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
                                               old: str, new: str, step: int, message: str) -> None:
    text = GOOD.replace(old, new)
    if case == "state name too long":  # photo__fixed would not fit procedures.state (VARCHAR 32)
        text = text.replace('on_reject = "photo"', 'on_reject = "a_very_long_photo_step_name"')
    path = _file(tmp_path, text)
    assert main(["procedures", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:{_line_of(text, '[[steps]]', step)}:" in err and message in err, err


def test_the_last_step_must_be_done_and_a_missing_file_is_reported(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, GOOD.rsplit("[[steps]]", 1)[0])
    assert main(["procedures", "check", str(path), str(tmp_path / "missing.toml")]) == 1
    err = capsys.readouterr().err
    assert "the last step must be done" in err and "missing.toml" in err


def test_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["procedures", "list"]) == 0
    listed = capsys.readouterr().out
    assert "hunnu_degree_2025" in listed and "csust_degree_english" in listed
    assert main(["procedures", "show", "csust_degree_english"]) == 0
    shown = capsys.readouterr().out
    assert "thesis" in shown and "when status equals 已毕业" in shown and "available_from 2024-10-20" in shown
    assert main(["procedures", "show", "nope"]) == 1


async def test_start_up_refuses_a_school_file_with_an_unknown_profile(tmp_path: Path, settings: Settings) -> None:
    extra = tmp_path / "procedures"
    extra.mkdir()
    _file(extra, GOOD.replace('profile = "chsi"', 'profile = "passport-uk"'))
    with pytest.raises(ProcedureError, match="unknown photo profile"):
        async with open_services(settings.with_(procedures_dir=str(extra)), None, Renderer()):
            pass


async def test_start_up_refuses_a_school_file_that_does_not_parse(tmp_path: Path, settings: Settings) -> None:
    extra = tmp_path / "procedures"
    extra.mkdir()
    _file(extra, GOOD.replace('type = "text"', 'type = "txt"'))
    with pytest.raises(ProcedureError, match=r"school\.toml:"):
        async with open_services(settings.with_(procedures_dir=str(extra)), None, Renderer()):
            pass
