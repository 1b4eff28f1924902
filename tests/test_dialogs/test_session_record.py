"""The session record's JSON: the same bytes dataclasses.asdict gave, and a faithful round trip."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from dialogs.session import SCHEMA, Frame, SessionRecord


@dataclass
class Picked:
    code: str
    rank: int


def record() -> SessionRecord:
    frame = Frame("bind", 1, "ask_id", {"name": "张三", "matches": [Picked("10001", 1)], "pair": (1, 2)},
                  ["consent", "choose_type"], {"ask_name": 2}, 1.5, 2.5)
    return SessionRecord(v=7, stack=[frame, Frame("link_school", 2, "province")], last_seen=3.0,
                         flags={"pending": {"kind": "resume"}})


def as_before(rec: SessionRecord) -> bytes:
    body = asdict(rec)
    body["schema"] = SCHEMA
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def test_dumps_writes_what_asdict_wrote() -> None:
    assert record().dumps() == as_before(record())
    assert SessionRecord().dumps() == as_before(SessionRecord())


def test_round_trip_keeps_position_and_data() -> None:
    back = SessionRecord.loads(record().dumps())
    assert back.v == 7 and [f.state for f in back.stack] == ["ask_id", "province"]
    assert back.stack[0].data["matches"] == [{"code": "10001", "rank": 1}]
    assert back.stack[0].retries == {"ask_name": 2} and back.flags == {"pending": {"kind": "resume"}}
