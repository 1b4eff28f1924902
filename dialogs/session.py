"""The session record: where a student is in which dialog. A cache of position, not of facts.

Durable facts (binding done, school linked, photo accepted, paid) live in SQL; if Redis loses this
record, dialogs rebuild the position from those facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import orjson

SCHEMA = 1
HISTORY_LIMIT = 10


@dataclass
class Frame:
    dialog: str
    version: int
    state: str
    data: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    retries: dict[str, int] = field(default_factory=dict)
    entered_at: float = 0.0
    updated_at: float = 0.0

    def push_history(self, state: str) -> None:
        self.history.append(state)
        del self.history[:-HISTORY_LIMIT]


@dataclass
class SessionRecord:
    v: int = 0
    stack: list[Frame] = field(default_factory=list)
    last_seen: float = 0.0
    # Small per-student flags that outlive a dialog (e.g. a pending "start X instead?" question).
    flags: dict[str, Any] = field(default_factory=dict)

    @property
    def top(self) -> Frame | None:
        return self.stack[-1] if self.stack else None

    def dumps(self) -> bytes:
        # Field by field, not dataclasses.asdict: that deep-copies every value first and cost 4x as
        # much on every message (61 -> 15 us for a frame in a dialog). orjson writes the same UTF-8
        # JSON as json.dumps(ensure_ascii=False) 17x faster (17 -> 1 us for a record in a dialog),
        # dataclasses inside ``data`` as asdict would; keys that are not strings become strings, as
        # json makes them.
        body = {"v": self.v, "stack": [{k: getattr(f, k) for k in _FRAME_FIELDS} for f in self.stack],
                "last_seen": self.last_seen, "flags": self.flags, "schema": SCHEMA}
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)

    @classmethod
    def loads(cls, raw: bytes | None) -> SessionRecord:
        """A record from Redis; anything unreadable starts afresh (facts are in SQL, not here)."""
        if not raw:
            return cls()
        try:
            body = orjson.loads(raw)
            return cls(
                v=int(body.get("v", 0)),
                stack=[Frame(**f) for f in body.get("stack", [])],
                last_seen=float(body.get("last_seen", 0.0)),
                flags=dict(body.get("flags", {})),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()


_FRAME_FIELDS = tuple(f.name for f in fields(Frame))

