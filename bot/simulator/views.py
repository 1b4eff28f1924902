"""HTTP side of the chat simulator: the phone page and its small JSON API under /simulator/api/."""

from __future__ import annotations

import json
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web
from jinja2 import Environment

from bot.demo.hints import HINTS
from bot.services.notify.templates import TemplateConfig
from bot.simulator.bridge import INTERACTION, Bridge, BridgeError
from bot.simulator.messages import from_inbox, from_reply

OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_TEXT = 2000
MAX_PHOTO = 10 << 20  # a phone's original photo; the stand-in keeps it as WeChat's media store would
EVENTS = {"CLICK": "click", "VIEW": "click", "pic_photo_or_album": "click", "pic_sysphoto": "click",
          "pic_weixin": "click", "subscribe": "subscribe", "unsubscribe": "unsubscribe"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Simulator:
    bridge: Bridge
    templates: TemplateConfig
    env: Environment
    clock: Callable[[], float] = time.time


SIMULATOR = web.AppKey("simulator", Simulator)


class BadInput(web.HTTPBadRequest):
    def __init__(self, message: str) -> None:
        super().__init__(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=HEADERS)


def _openid(value: Any) -> str:
    if not isinstance(value, str) or not OPENID.match(value):
        raise BadInput("openid must be 6-64 letters, digits, _ or -")
    return value


def callback_url(request: web.Request) -> str:
    """gradbot's own /wechat, at the address this request reached (never a Host header's say-so)."""
    host, port = request.transport.get_extra_info("sockname")[:2] if request.transport else ("127.0.0.1", 8080)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/wechat"


# -- pages -------------------------------------------------------------------------------------

async def page(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    html = sim.env.get_template("phone.html.j2").render(safe_mode=sim.bridge.safe_mode)
    return web.Response(text=html, content_type="text/html", headers=HEADERS)


async def config(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    try:
        menu = await sim.bridge.menu()
    except BridgeError:
        menu = {}  # no stand-in answering: the phone shows no menu, as WeChat does without one
    return _json({"menu": menu.get("button", []), "safe_mode": sim.bridge.safe_mode, "hints": HINTS})


# -- sending -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Action:
    openid: str
    interaction: str
    build: Callable[[Simulator], Awaitable[str]]  # the callback XML (after any upload)
    shown: dict[str, Any]  # the student's own bubble


async def send(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    action = await (_photo(request) if request.content_type == "multipart/form-data" else _json_action(request))
    try:
        await sim.bridge.interaction(action.openid, action.interaction)
        xml = await action.build(sim)
        result = await sim.bridge.post_callback(callback_url(request), action.openid, xml)
    except BridgeError as exc:
        return _json({"error": str(exc)}, 502)
    now = sim.clock()
    if result.status != 200 or result.error:
        return _json({"error": f"gradbot answered HTTP {result.status}: {result.error}"}, 502)
    replies = from_reply(result.reply, now) if result.reply else []
    return _json({"sent": {**action.shown, "at": now}, "replies": replies})


async def _json_action(request: web.Request) -> Action:
    try:
        data = await request.json()
    except ValueError:
        raise BadInput("body must be JSON") from None
    if not isinstance(data, dict):
        raise BadInput("body must be a JSON object")
    openid = _openid(data.get("openid"))
    if "text" in data:
        return _text_action(openid, data["text"])
    return _event_action(openid, data.get("event"), data.get("key", ""))


def _text_action(openid: str, text: Any) -> Action:
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise BadInput(f"text must be 1-{MAX_TEXT} characters")

    async def build(sim: Simulator) -> str:
        return sim.bridge.server.text_xml(openid, text)
    return Action(openid, INTERACTION["text"], build, {"type": "text", "content": text})


def _event_action(openid: str, event: Any, key: Any) -> Action:
    if event not in EVENTS:
        raise BadInput(f"event must be one of {', '.join(EVENTS)}")
    if not isinstance(key, str) or len(key) > 1024 or (event in ("CLICK", "VIEW") and not key):
        raise BadInput("key must be text (1-1024 characters for CLICK and VIEW)")

    async def build(sim: Simulator) -> str:
        return sim.bridge.server.event_xml(openid, str(event), key)
    return Action(openid, EVENTS[str(event)], build, {"type": "event", "event": event, "key": key})


async def _photo(request: web.Request) -> Action:
    fields = await _form(request)
    openid = _openid(fields.get("openid", ("", b""))[1].decode("utf-8", "replace"))
    ctype, data = fields.get("photo", ("", b""))
    if not data or not ctype.startswith("image/"):
        raise BadInput("photo must be an image file")

    async def build(sim: Simulator) -> str:
        media_id = await sim.bridge.upload_photo(data, ctype, "photo" + (mimetypes.guess_extension(ctype) or ""))
        shown["media_id"] = media_id
        return sim.bridge.server.image_xml(openid, media_id)
    shown: dict[str, Any] = {"type": "image"}
    return Action(openid, INTERACTION["image"], build, shown)


async def _form(request: web.Request) -> dict[str, tuple[str, bytes]]:
    """name -> (content type, bytes) of each part, read as a stream: the app's 64 KB body limit is for
    callbacks, a photo is bigger, so the limit here is MAX_PHOTO per part."""
    fields: dict[str, tuple[str, bytes]] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name in ("openid", "photo"):
                fields[part.name] = (part.headers.get("Content-Type", ""), await _read_limited(part))
    except (ValueError, AssertionError):
        raise BadInput("the form could not be read") from None
    return fields


async def _read_limited(part: BodyPartReader) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(1 << 16):
        size += len(chunk)
        if size > MAX_PHOTO:
            raise BadInput(f"photo is larger than {MAX_PHOTO >> 20} MB")
        chunks.append(chunk)
    return b"".join(chunks)


# -- what arrives later ------------------------------------------------------------------------

async def inbox(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    openid = _openid(request.match_info["openid"])
    raw_since = request.query.get("since", "0")
    if not raw_since.isdigit():
        raise BadInput("since must be a number")
    try:
        entries = await sim.bridge.inbox(openid)
    except BridgeError as exc:
        return _json({"error": str(exc)}, 502)
    since = int(raw_since) if int(raw_since) <= len(entries) else 0  # a restarted stand-in starts afresh
    return _json({"items": [from_inbox(e, sim.templates) for e in entries[since:]], "next": len(entries)})


async def media(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIMULATOR]
    media_id = request.match_info["media_id"]
    if not MEDIA_ID.match(media_id):
        raise web.HTTPNotFound()
    try:
        data, ctype = await sim.bridge.media(media_id)
    except BridgeError:
        raise web.HTTPNotFound() from None
    if not ctype.startswith("image/"):
        raise web.HTTPNotFound()
    return web.Response(body=data, content_type=ctype,
                        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})
