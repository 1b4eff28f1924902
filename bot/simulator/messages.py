"""What the student's phone shows, in one shape for the page: passive replies and inbox entries alike.

``{"type": "text", "content"}``, ``{"type": "image", "media_id"}``, ``{"type": "news", "title",
"description", "url", "picurl"}``, ``{"type": "template", "title", "fields": [{"name", "value"}],
"url"}``; each with ``channel`` (``reply``, ``cs``, ``template``) and ``at`` (Unix seconds).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.services.notify.templates import TemplateConfig

Shown = dict[str, Any]
# WeChat shows each template field under the keyword label chosen in the MP admin; ours are named by
# the value they carry.
LABELS = {"procedure_title": "办理事项", "result": "审核结果", "reasons": "说明", "next_step": "下一步",
          "decided_at": "审核时间", "school_name": "学校", "closes": "截止时间", "message": "内容"}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _article(raw: Mapping[str, Any], capital: bool) -> Shown:
    names = ("Title", "Description", "Url", "PicUrl") if capital else ("title", "description", "url", "picurl")
    title, description, url, picurl = (_text(raw.get(n)) for n in names)
    return {"type": "news", "title": title, "description": description, "url": url, "picurl": picurl}


def from_reply(reply: Mapping[str, Any], at: float) -> list[Shown]:
    """A decoded passive reply (the XML as a dict)."""
    kind = reply.get("MsgType")
    if kind == "text":
        shown = [{"type": "text", "content": _text(reply.get("Content"))}]
    elif kind == "image":
        image = reply.get("Image") or {}
        shown = [{"type": "image", "media_id": _text(image.get("MediaId"))}]
    elif kind == "news":
        items = (reply.get("Articles") or {}).get("item") or []
        shown = [_article(a, capital=True) for a in (items if isinstance(items, list) else [items])]
    else:
        shown = [{"type": "text", "content": f"[{kind}]"}]
    return [{**s, "channel": "reply", "at": at} for s in shown]


def from_inbox(entry: Mapping[str, Any], templates: TemplateConfig) -> Shown:
    """One entry of the stand-in's inbox (a customer-service or template message)."""
    kind, payload = entry.get("type"), entry.get("payload") or {}
    base = {"channel": _text(entry.get("channel")) or "cs", "at": entry.get("timestamp") or 0}
    if kind == "text":
        return {**base, "type": "text", "content": _text(payload.get("content"))}
    if kind == "image":
        return {**base, "type": "image", "media_id": _text(payload.get("media_id"))}
    if kind == "news":
        articles = payload.get("articles") or [{}]
        return {**base, **_article(articles[0], capital=False)}
    if kind == "template":
        return {**base, **_template(payload, templates)}
    return {**base, "type": "text", "content": f"[{kind}]"}


def _template(payload: Mapping[str, Any], templates: TemplateConfig) -> Shown:
    template_id = _text(payload.get("template_id"))
    spec = next((t for t in templates.templates.values() if t.template_id == template_id), None)
    data = payload.get("data") or {}
    labels = {f.name: _label(f.name, f.value) for f in spec.fields} if spec else {name: name for name in data}
    fields = [{"name": label, "value": _text((data.get(name) or {}).get("value"))}
              for name, label in labels.items() if name in data]
    return {"type": "template", "title": spec.title if spec else template_id, "fields": fields,
            "url": _text(payload.get("url"))}


def _label(name: str, pattern: str) -> str:
    found = _PLACEHOLDER.search(pattern)
    return LABELS.get(found.group(1), name) if found else name
