"""storage.files: content-addressed, atomic, private, idempotent."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from storage.files import FileNotStored, FileStore


def test_put_get_path(tmp_path: Path) -> None:
    store = FileStore.under(tmp_path)
    digest = store.put(b"photo bytes")
    assert digest == hashlib.sha256(b"photo bytes").hexdigest()
    assert store.get(digest) == b"photo bytes"
    path = store.path(digest)
    assert path == tmp_path / "files" / digest[:2] / digest[2:4] / digest
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.exists(digest)


def test_same_bytes_stored_once_and_no_temp_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    a, b = store.put(b"x" * 1000), store.put(b"x" * 1000)
    assert a == b
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [a]


def test_original_and_fixed_are_separate(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    assert store.put(b"original") != store.put(b"fixed")


def test_missing_and_malformed(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    with pytest.raises(FileNotStored):
        store.get("0" * 64)
    for bad in ("../../etc/passwd", "ab", "G" * 64):
        with pytest.raises(ValueError):
            store.path(bad)
    assert store.delete("0" * 64) is False


def test_delete(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    digest = store.put(b"raw upload")
    assert store.delete(digest) and not store.exists(digest)


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    """A write that fails midway (here: not bytes) leaves no file and no temporary behind."""
    store = FileStore(tmp_path)
    with pytest.raises(TypeError):
        store.put("text, not bytes")  # type: ignore[arg-type]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
