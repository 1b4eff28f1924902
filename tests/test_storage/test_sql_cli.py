"""``gradbot students show`` and ``gradbot db …`` through the CLI entry point, on both backends."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from bot import cli
from bot.config import Settings, SettingsError
from bot.privacy import mask_id, mask_name
from bot.records import data_keyring
from storage.sql import identity, links, procedures, schools, verifications
from storage.sql.crypto import Keyring, generate_key
from storage.sql.db import Database
from storage.sql.identity import IdentityInput, PiiCodec
from storage.sql.migrate import head
from storage.sql.rotation import key_usage
from storage.sql.schools import School

WHO = IdentityInput("mainland_id", "王小明", "110101200102031232")


async def gradbot(*argv: str) -> int:
    # The CLI runs its own event loop, so it goes to a thread, as it would run in its own process.
    return await asyncio.to_thread(cli.main, list(argv))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, sql_url: str, tmp_path: Path, data_key: str) -> str:
    monkeypatch.setenv("GRADBOT_DATABASE_URL", sql_url)
    monkeypatch.setenv("GRADBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GRADBOT_DATA_KEY", data_key)
    monkeypatch.delenv("GRADBOT_DATA_KEY_PREVIOUS", raising=False)
    return sql_url


async def _fill(url: str, pii: PiiCodec) -> None:
    async with Database(url) as db, db.begin() as conn:
        binding = await identity.bind(conn, pii, "o1", WHO, actor="student")
        await verifications.record(conn, binding, outcome="match", provider="sandbox")
        await schools.upsert_many(conn, [School("4142010487", "华中科技大学", "湖北省", "武汉市", "教育部", "本科")])
        await links.set_link(conn, "o1", school_code="4142010487", school_name="华中科技大学",
                             education_type="regular", level="本科", cohort=2026)
        await procedures.set_state(conn, "o1", "photo", "waiting_photo", next_step="发送一张证件照")


async def test_students_show_json_is_the_contract(env: str, pii: PiiCodec,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert await gradbot("db", "upgrade") == 0
    await _fill(env, pii)
    capsys.readouterr()
    assert await gradbot("students", "show", "o1", "--json") == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {
        "openid": "o1",
        "binding": {"id_type": "mainland_id", "name_masked": mask_name(WHO.name),
                    "id_masked": mask_id(WHO.id_number), "verified": "match"},
        "school": {"name": "华中科技大学", "code": "4142010487", "province": "湖北省", "city": "武汉市",
                   "education_type": "regular", "level": "本科", "cohort": 2026},
        "procedures": [{"name": "photo", "state": "waiting_photo", "next_step": "发送一张证件照"}],
    }
    assert WHO.name not in out and WHO.id_number not in out


async def test_students_show_for_a_bare_student_and_as_text(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await gradbot("db", "upgrade") == 0
    async with Database(env) as db, db.begin() as conn:
        await procedures.set_state(conn, "o2", "photo", "started")
    assert await gradbot("students", "show", "o2", "--json") == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):]) == {
        "openid": "o2", "binding": None, "school": None,
        "procedures": [{"name": "photo", "state": "started", "next_step": None}]}
    assert await gradbot("students", "show", "o2") == 0
    assert "identity: not bound" in capsys.readouterr().out


async def test_students_show_explains_missing_student_and_missing_schema(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await gradbot("students", "show", "o1", "--json") == 2
    assert "gradbot db upgrade" in capsys.readouterr().err
    assert await gradbot("db", "upgrade") == 0
    assert await gradbot("students", "show", "o-nobody", "--json") == 1
    captured = capsys.readouterr()
    assert "no student" in captured.err and captured.out.strip().endswith(head())


async def test_db_current_and_rotate_key(env: str, pii: PiiCodec, monkeypatch: pytest.MonkeyPatch,
                                         data_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await gradbot("db", "current") == 1  # empty database: behind head
    assert await gradbot("db", "upgrade") == 0
    await _fill(env, pii)
    new = generate_key()
    monkeypatch.setenv("GRADBOT_DATA_KEY", new)
    monkeypatch.setenv("GRADBOT_DATA_KEY_PREVIOUS", data_key)
    assert await gradbot("db", "rotate-key") == 0
    assert await gradbot("db", "current") == 0
    out = capsys.readouterr().out
    assert "re-encrypted 1 rows" in out and f"key {Keyring(new).current.kid} (current): 1" in out
    async with Database(env) as db, db.read() as conn:
        assert await key_usage(conn) == {Keyring(new).current.kid: 1}
        assert await identity.reveal(conn, Keyring(new), "o1") == WHO


async def test_bad_data_key_is_a_clear_error(env: str, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRADBOT_DATA_KEY", "not-a-key")
    assert await gradbot("db", "rotate-key") == 2
    assert "GRADBOT_DATA_KEY" in capsys.readouterr().err


def test_embedded_demo_generates_a_private_key_file_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    first = data_keyring(settings)
    key_file = tmp_path / "var" / "data.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert data_keyring(settings).current.kid == first.current.kid
    assert [p.name for p in key_file.parent.iterdir()] == ["data.key"]


def test_shared_database_without_a_data_key_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql+asyncpg://db.example/gradbot")
    with pytest.raises(SettingsError, match="GRADBOT_DATA_KEY"):
        data_keyring(settings)
    assert not (tmp_path / "data.key").exists()


MOE_CSV = """序号,学校名称,学校标识码,主管部门,所在地,办学层次,备注
湖北省（2所）,,,,,,
1,华中科技大学,4142010487,教育部,武汉市,本科,
2,武汉轻工大学,4142010496,湖北省,武汉市,本科,
"""


async def test_schools_import_upserts_the_moe_list(env: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "moe.csv"
    good.write_text(MOE_CSV, encoding="utf-8")
    assert await gradbot("schools", "import", str(good)) == 0
    assert await gradbot("schools", "import", str(good)) == 0
    out = capsys.readouterr().out
    assert "imported 2 schools" in out and "(2 new, 0 updated" in out and "(0 new, 2 updated" in out
    async with Database(env) as db, db.read() as conn:
        assert [s.name for s in await schools.by_place(conn, "湖北省", "武汉市")] == ["华中科技大学", "武汉轻工大学"]


async def test_schools_import_with_bad_rows_writes_nothing_unless_told(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(MOE_CSV + "3,某学院,12345,湖北省,武汉市,本科,\n", encoding="utf-8")
    assert await gradbot("schools", "import", str(bad)) == 1
    err = capsys.readouterr().err
    assert f"{bad}:5:" in err and "nothing imported" in err
    assert await gradbot("schools", "import", str(tmp_path / "missing.csv")) == 2
    assert await gradbot("schools", "import", str(bad), "--skip-bad") == 0
    assert "(2 new, 0 updated, 1 rejected)" in capsys.readouterr().out
