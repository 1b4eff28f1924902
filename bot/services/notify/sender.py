"""One template send, with WeChat's answer turned into what the caller must do next.

| answer | outcome | the caller |
|---|---|---|
| ok | ``sent`` (with msgid) | records the msgid (delivery reports match on it) |
| 43004 require subscribe | ``unfollowed`` | marks the student unfollowed, stops for them |
| 45009 quota | ``quota`` | pauses every template sender until the quota resets |
| 47003 argument invalid | ``bad_field`` (field name) | logs the field; fails this message |
| -1, 5xx, timeouts | ``retry`` | tries again later with backoff (same client_msg_id) |
| 40037 template, credentials | ``stop`` | pauses: configuration must change, no message can succeed |
| anything else (40003 …) | ``failed`` | records the errcode |
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.privacy import mask_openid
from bot.wechat import errors
from bot.wechat.api import WeChatAPI

log = logging.getLogger("bot.notify")
_FIELD = re.compile(r"data\.([A-Za-z0-9_]+)\.value")
TRANSPORT_ERRCODE = -2  # our code for "no answer" (timeout, 5xx): not a WeChat errcode


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: str  # sent, unfollowed, quota, bad_field, retry, stop, failed
    msgid: int | None = None
    errcode: int = 0
    detail: str = ""


def classify(exc: errors.WeChatError) -> SendResult:
    code = exc.errcode if isinstance(exc, errors.WeChatAPIError) else TRANSPORT_ERRCODE
    if isinstance(exc, errors.Unfollowed):
        return SendResult("unfollowed", errcode=code)
    if isinstance(exc, errors.QuotaExceeded):
        return SendResult("quota", errcode=code)
    if isinstance(exc, errors.ArgumentInvalid):
        match = _FIELD.search(exc.errmsg)
        return SendResult("bad_field", errcode=code, detail=match.group(1) if match else exc.errmsg[:64])
    if isinstance(exc, errors.InvalidTemplate | errors.CredentialError):
        return SendResult("stop", errcode=code, detail=str(exc)[:200])
    if exc.retryable or isinstance(exc, errors.AccessTokenInvalid):
        return SendResult("retry", errcode=code, detail=str(exc)[:200])
    return SendResult("failed", errcode=code, detail=str(exc)[:200])


async def send_template(api: WeChatAPI, openid: str, template_id: str, data: Mapping[str, str], url: str | None,
                        client_msg_id: str) -> SendResult:
    try:
        msgid = await api.send_template(openid, template_id, data, url=url, client_msg_id=client_msg_id)
    except errors.WeChatError as exc:
        result = classify(exc)
        if result.outcome == "bad_field":
            log.error("template %s refused field %s (47003) for %s", template_id, result.detail, mask_openid(openid))
        elif result.outcome != "retry":
            log.warning("template %s for %s: %s (%s)", template_id, mask_openid(openid), result.outcome,
                        result.errcode)
        return result
    return SendResult("sent", msgid=msgid)


def backoff(attempt: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Seconds before try ``attempt + 1``: 1, 2, 4, … capped."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))
