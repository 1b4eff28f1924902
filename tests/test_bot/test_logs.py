"""Log lines: one JSON object per event, request ids, and no name or ID number anywhere (metrics too)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.logs import HEADER, handler, setup_logging
from bot.services.identity import make_test_id
from tests.fixtures.app import Gradbot
from tests.fixtures.conversation import Student

NAME = "司马相如"
ID_NUMBER = make_test_id("430102", "19990101", "123")
WRONG_ID = make_test_id("110101", "20000101", "996")  # the sandbox says: name and number do not match


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every logger at DEBUG (SQLAlchemy statements, aiosqlite, aiohttp, ours) into JSON lines."""
    stream = io.StringIO()
    out = handler(Settings(log_json=True), stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(out)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(out)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_whole_binding_leaves_no_name_or_number_in_logs_or_metrics(
    gradbot: Gradbot, captured: io.StringIO
) -> None:
    student = Student(gradbot, "oLogs_student_0001")
    for text in ("实名认证", "同意", "1", NAME, WRONG_ID, "确认", NAME, ID_NUMBER, "确认"):
        await student.send(text)
    assert (await student.summary())["binding"]["verified"] == "match"
    metrics = await (await gradbot.client.get("/metrics")).text()
    logged = lines(captured)
    assert len(logged) > 50  # SQL statements and their parameters were logged, not just our own lines
    text = captured.getvalue()
    for secret in (NAME, ID_NUMBER, WRONG_ID):
        assert secret not in text and secret not in metrics
    assert any(line.get("request_id") for line in logged)


def _record(msg: str, *args: object, exc: bool = False) -> dict[str, object]:
    stream = io.StringIO()
    log = logging.getLogger("tests.logs.unit")
    out = handler(Settings(log_json=True), stream)
    log.addHandler(out)
    try:
        if exc:
            try:
                raise ValueError(f"bad number {ID_NUMBER}")
            except ValueError:
                log.exception(msg, *args, extra={"student": f"id {ID_NUMBER}"})
        else:
            log.warning(msg, *args)
    finally:
        log.removeHandler(out)
    return dict(json.loads(stream.getvalue()))


def test_id_numbers_are_masked_in_messages_exceptions_and_extra_fields() -> None:
    line = _record("verification of %s failed", ID_NUMBER, exc=True)
    masked = ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[-4:]
    assert line["msg"] == f"verification of {masked} failed"
    assert line["exc_type"] == "ValueError" and masked in str(line["exc"]) and ID_NUMBER not in str(line["exc"])
    assert line["student"] == f"id {masked}" and line["level"] == "error"


def test_openids_in_access_log_query_strings_are_shortened() -> None:
    line = _record('"POST /wechat?signature=abc&openid=oAbCdEfGhIjKlMnOpQrStUvWxYz0 HTTP/1.1" 200')
    assert "openid=oAbCdE…xYz0" in str(line["msg"])


def test_a_malformed_log_call_is_logged_not_raised() -> None:
    assert "unformattable" in str(_record("two %s %s", "args missing one")["msg"])


async def test_every_response_carries_a_request_id(gradbot: Gradbot) -> None:
    mine = await gradbot.client.get("/healthz", headers={HEADER: "nginx-7f3a9c"})
    assert mine.headers[HEADER] == "nginx-7f3a9c"
    forged = await gradbot.client.get("/healthz", headers={HEADER: "evil\u202eid <script>"})
    made = forged.headers[HEADER]
    assert len(made) == 32 and made.isalnum()


def test_setup_logging_replaces_the_root_handlers() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        stream = io.StringIO()
        setup_logging(Settings(log_json=False), stream=stream)
        logging.getLogger("bot.test").info("number %s", ID_NUMBER)
        assert len(root.handlers) == 1 and "[-] number 4301**********" in stream.getvalue()
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in before:
            root.addHandler(h)


async def test_a_dialog_step_logs_no_routine_lines_at_info(gradbot: Gradbot) -> None:
    """transitions logs every state callback at INFO; at the service's level a step writes nothing."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    chatty = {name: logging.getLogger(name).level for name in ("transitions", "taskiq.receiver")}
    stream = io.StringIO()
    try:
        setup_logging(Settings(log_json=True), stream=stream)
        student = Student(gradbot, "oLogs_quiet_000001")
        for text in ("实名认证", "同意", "1", NAME, "返回", "取消"):
            await student.send(text)
        logging.getLogger("transitions.core").warning("a real problem")
        ours = [line["msg"] for line in lines(stream) if line["logger"] != "aiohttp.access"]  # one per request
        assert ours == ["a real problem"]
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in before:
            root.addHandler(h)
        root.setLevel(level)
        for name, lvl in chatty.items():
            logging.getLogger(name).setLevel(lvl)
