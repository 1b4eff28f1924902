"""Logging for every gradbot process: one line per event, request ids, personal data masked.

``setup_logging(settings)`` installs one stderr handler on the root logger. Its filter runs on every
record of every library (aiohttp, taskiq, SQLAlchemy) before it is formatted:

* the message, the formatted exception and the stack are passed through ``bot.privacy.scrub``, which
  masks anything shaped like an ID or passport number (12–22 letters and digits), and the value of
  any ``openid=`` query parameter (access-log lines) is shortened by ``mask_openid``;
* the request id of the current HTTP request is attached (``request_id``).

Names cannot be recognised in free text, so code never logs them (it logs ``mask_name`` or
nothing); tests/test_bot/test_logs.py walks a whole binding with every logger at DEBUG and checks
that neither the name nor the number appears. ``GRADBOT_LOG_JSON=1`` writes JSON lines
(``ts level logger msg request_id`` plus ``exc_type``/``exc`` and any ``extra`` fields) for a log
shipper; the default is one readable text line per event.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from aiohttp import web

from bot.config import Settings
from bot.privacy import mask_openid, scrub

REQUEST_ID: ContextVar[str] = ContextVar("gradbot_request_id", default="")
HEADER = "X-Request-Id"
REQUEST_ID_KEY = web.RequestKey("gradbot_request_id", str)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_OPENID_PARAM = re.compile(r"(openid=)([A-Za-z0-9_-]+)")
_TOKEN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{12,22}(?![0-9A-Za-z])")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id"}


def clean(text: str) -> str:
    """Text fit for a log line: ID-like numbers masked, openids in query strings shortened.

    Only tokens with at least 6 digits count as ID-like here (``scrub`` alone would also mask
    ``ConnectionRefusedError``); every ID and passport number of 12 or more characters has that many.
    """
    text = _OPENID_PARAM.sub(lambda m: m.group(1) + mask_openid(m.group(2)), text)
    return _TOKEN.sub(lambda m: scrub(m.group(0)) if sum(c.isdigit() for c in m.group(0)) >= 6 else m.group(0), text)


class PrivacyFilter(logging.Filter):
    """Masks personal data in the record itself, so every handler and formatter sees the clean text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", "") or REQUEST_ID.get() or "-"
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not break the caller
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg, record.args = clean(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = clean(record.exc_text)
        if record.stack_info:
            record.stack_info = clean(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", "-")
        if rid != "-":
            out["request_id"] = rid
        out.update(_extras(record))
        if record.exc_info:
            out["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else ""
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """Fields passed with ``extra=``; strings are cleaned like the message."""
    return {k: clean(v) if isinstance(v, str) else v
            for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


def handler(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    out = logging.StreamHandler(stream or sys.stderr)
    out.addFilter(PrivacyFilter())
    out.setFormatter(JsonFormatter() if settings.log_json else logging.Formatter(TEXT_FORMAT))
    return out


# Libraries that log every routine step at INFO: transitions a line per state callback (about ten per
# dialog step: 49,000 lines in two minutes of the soak, a sixth of a web worker's CPU with the JSON
# formatting and the writes), taskiq a line per job. Their warnings and errors still show.
CHATTY = {"transitions": logging.WARNING, "taskiq.receiver": logging.WARNING}


def setup_logging(settings: Settings, *, level: int = logging.INFO, stream: IO[str] | None = None) -> None:
    """Replace the root logger's handlers with gradbot's (call once per process, spawned ones too)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(settings, stream))
    root.setLevel(level)
    for name, floor in CHATTY.items():
        logging.getLogger(name).setLevel(max(level, floor))


# -- request ids --------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Take the proxy's ``X-Request-Id`` (nginx ``$request_id``) or make one; every log line of the
    request, and of the pipeline task it spawns (contexts are copied), carries it."""
    given = request.headers.get(HEADER, "")
    rid = given if _SAFE_ID.fullmatch(given) else os.urandom(16).hex()  # uuid4().hex's form, at a fifth the CPU
    request[REQUEST_ID_KEY] = rid
    token = REQUEST_ID.set(rid)
    try:
        return await handler(request)
    finally:
        REQUEST_ID.reset(token)


async def _echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    rid = request.get(REQUEST_ID_KEY)
    if rid:
        response.headers[HEADER] = rid


def install(app: web.Application) -> None:
    app.middlewares.append(request_ids)
    app.on_response_prepare.append(_echo_request_id)
