"""Content-addressed file store: photos (originals and fixed versions) kept by their SHA-256.

Local directory by default (``Settings.data_dir / "files"``, passed in by the composition root).
Writes are atomic (temporary file in the same directory, fsync, rename), so a crash never leaves a
half-written photo under a valid name, and storing the same bytes twice is a no-op. Files are
private to the service user (0600): they are students' faces.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

_DIGEST = re.compile(r"[0-9a-f]{64}")


class FileNotStored(KeyError):
    """No file with that digest is in the store."""


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def under(cls, data_dir: Path) -> FileStore:
        return cls(Path(data_dir) / "files")

    def path(self, digest: str) -> Path:
        """Where the file lives (two levels of fan-out so no directory grows huge)."""
        if not _DIGEST.fullmatch(digest):
            raise ValueError("a file digest is 64 lowercase hex characters")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise FileNotStored(digest) from exc

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def delete(self, digest: str) -> bool:
        """Remove a file (retention limits on raw uploads); False if it was not there."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True
