"""`gradbot check-photo` and `gradbot profiles list`: the JSON contract, the fix file, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import main
from bot.services.photos.profiles import ENV_VAR
from tests.fixtures import photos as ph

CHECK_KEYS = {"id", "ok", "severity", "measured", "expected", "message"}


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_contract_and_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    good.write_bytes(ph.jpeg(ph.studio(size=(960, 1280), face=420, eye=560), quality=92))
    bad.write_bytes(b"not a photo")
    out = tmp_path / "out.jpg"
    assert main(["check-photo", str(good), str(bad), "--json", "--fix", str(out)]) == 0
    first, second = _jsonl(capsys.readouterr().out)
    assert set(first) == {"file", "profile", "ok", "fixable", "checks", "fixed", "ms"}
    assert first["profile"] == "chsi" and first["ok"] is False and first["fixable"] is True
    assert all(set(c) == CHECK_KEYS and c["severity"] in {"error", "warning"} for c in first["checks"])
    fixed = first["fixed"]
    assert fixed["ok"] is True and (fixed["width"], fixed["height"]) == (480, 640)
    assert Path(fixed["path"]) == tmp_path / "out-1.jpg"
    assert Path(fixed["path"]).stat().st_size == fixed["bytes"]
    assert Image.open(io.BytesIO(Path(fixed["path"]).read_bytes())).size == (480, 640)
    assert second["ok"] is False and second["fixed"] is None and second["checks"][0]["id"] == "decode"
    assert isinstance(first["ms"], float)


def test_single_file_fix_goes_to_out_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "in.png", tmp_path / "fixed.jpg"
    src.write_bytes(ph.png(ph.studio()))
    assert main(["check-photo", str(src), "--profile", "hunnu-degree", "--fix", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.exists() and str(out) in text and "已自动裁剪" in text


def test_unknown_profile_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jpg"
    src.write_bytes(b"x")
    assert main(["check-photo", str(src), "--profile", "nope"]) == 2
    assert "unknown profile" in capsys.readouterr().err


def test_profiles_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "list", "--json"]) == 0
    names = [p["name"] for p in json.loads(capsys.readouterr().out)]
    assert {"chsi", "hunnu-degree", "hanjiang-2025", "shanxi-zikao"} <= set(names)
    assert main(["profiles", "list"]) == 0
    assert "480x640" in capsys.readouterr().out


def test_profiles_from_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "p.toml"
    extra.write_text('[my-school]\nextends = "chsi"\nkb = [30, 900]\n', "utf-8")
    monkeypatch.setenv(ENV_VAR, str(extra))
    assert main(["profiles", "list"]) == 0
    assert "my-school" in capsys.readouterr().out
    extra.write_text("[broken", "utf-8")
    assert main(["profiles", "list"]) == 2
    assert "photo profiles" in capsys.readouterr().err
