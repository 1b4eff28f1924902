"""What gradbot sends a student: one value type, rendered as a passive XML reply or a CS payload.

Passive replies are built by hand rather than with wechatpy's ``create_reply`` because wechatpy puts
text into CDATA unescaped (a ``]]>`` in user-derived text breaks the XML) and allows more than the one
news article WeChat accepts in a reply to a user message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

Kind = Literal["text", "image", "news"]


@dataclass(frozen=True, slots=True)
class OutMessage:
    kind: Kind
    content: str = ""  # text
    media_id: str = ""  # image
    title: str = ""  # news (exactly one article)
    description: str = ""
    url: str = ""
    picurl: str = ""

    @classmethod
    def text(cls, content: str) -> OutMessage:
        return cls("text", content=content)

    @classmethod
    def image(cls, media_id: str) -> OutMessage:
        return cls("image", media_id=media_id)

    @classmethod
    def news(cls, title: str, description: str, url: str, picurl: str = "") -> OutMessage:
        return cls("news", title=title, description=description, url=url, picurl=picurl)

    def to_dict(self) -> dict[str, str]:
        # Not dataclasses.asdict (deep copies first): every reply is cached as JSON, 24 -> 6 us.
        return {k: v for k in _ORDER if (v := getattr(self, k))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutMessage:
        kind = str(data.get("kind", "text"))
        if kind not in ("text", "image", "news"):
            raise ValueError(f"unknown message kind {kind!r}")
        fields = {k: str(v) for k, v in data.items() if k in _FIELDS and k != "kind"}
        return cls(kind, **fields)  # type: ignore[arg-type]  # kind narrowed by the check above

    def to_cs_payload(self, openid: str) -> dict[str, Any]:
        """Body of ``POST /cgi-bin/message/custom/send``."""
        if self.kind == "text":
            return {"touser": openid, "msgtype": "text", "text": {"content": self.content}}
        if self.kind == "image":
            return {"touser": openid, "msgtype": "image", "image": {"media_id": self.media_id}}
        article = {"title": self.title, "description": self.description, "url": self.url,
                   "picurl": self.picurl}
        return {"touser": openid, "msgtype": "news", "news": {"articles": [article]}}

    def to_xml(self, to_user: str, from_user: str, create_time: int) -> str:
        head = (f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}"
                f"</FromUserName><CreateTime>{int(create_time)}</CreateTime>")
        if self.kind == "text":
            body = f"<MsgType>{cdata('text')}</MsgType><Content>{cdata(self.content)}</Content>"
        elif self.kind == "image":
            body = f"<MsgType>{cdata('image')}</MsgType><Image><MediaId>{cdata(self.media_id)}</MediaId></Image>"
        else:
            body = (f"<MsgType>{cdata('news')}</MsgType><ArticleCount>1</ArticleCount><Articles><item>"
                    f"<Title>{cdata(self.title)}</Title><Description>{cdata(self.description)}</Description>"
                    f"<PicUrl>{cdata(self.picurl)}</PicUrl><Url>{cdata(self.url)}</Url></item></Articles>")
        return head + body + "</xml>"


_ORDER = tuple(OutMessage.__dataclass_fields__)
_FIELDS = set(_ORDER)


def cdata(text: str) -> str:
    """A CDATA section that stays one even when ``text`` contains ``]]>``."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def dumps(messages: list[OutMessage]) -> bytes:
    """The cached form of a reply (UTF-8 JSON, as ``json.dumps(ensure_ascii=False)`` would write it)."""
    return orjson.dumps([m.to_dict() for m in messages])


def loads(raw: str | bytes) -> list[OutMessage]:
    return [OutMessage.from_dict(d) for d in orjson.loads(raw)]
