"""Errors of the outbound WeChat API, with one table that maps ``errcode`` to a typed exception.

WeChat answers almost everything with HTTP 200 and ``{"errcode": N, "errmsg": "... rid: ..."}``;
:func:`api_error` is the only place that turns such an answer into an exception, so callers catch
meaning (``OutOfWindow``) rather than numbers. ``retryable`` tells the client's retry loop what a
second try could fix.
"""

from __future__ import annotations

import re

_RID = re.compile(r"\s*rid:\s*(\S+)\s*$")


class WeChatError(Exception):
    """Base of every outbound WeChat failure."""

    retryable: bool = False


class WeChatTransportError(WeChatError):
    """No usable answer: timeout, connection failure, 5xx, or a body that is not what WeChat sends."""

    def __init__(self, reason: str, *, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(f"{reason} (HTTP {status})" if status else reason)
        self.reason = reason
        self.status = status
        self.retryable = retryable


class WeChatAPIError(WeChatError):
    """WeChat answered with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str, rid: str = "") -> None:
        super().__init__(f"errcode {errcode}: {errmsg}" + (f" (rid {rid})" if rid else ""))
        self.errcode = errcode
        self.errmsg = errmsg
        self.rid = rid


class AccessTokenInvalid(WeChatAPIError):
    """40001 / 40014 / 42001: the client refreshes the token once and retries once, never more."""


class CredentialError(WeChatAPIError):
    """AppID, AppSecret or server IP refused while fetching a token: configuration, not load."""


class SystemBusy(WeChatAPIError):
    """-1: WeChat is busy; worth retrying with backoff."""

    retryable = True


class QuotaExceeded(WeChatAPIError):
    """45009: the daily quota of this API is used up."""


class OutOfWindow(WeChatAPIError):
    """45015: no customer-service window (48 h since the student last wrote) or they unfollowed."""


class ResponseLimit(WeChatAPIError):
    """45047: this trigger's allowance of customer-service messages is used up."""


class Unfollowed(WeChatAPIError):
    """43004: the student does not follow the account."""


class InvalidMedia(WeChatAPIError):
    """40007: unknown or expired media_id (temporary media live 3 days)."""


class InvalidTemplate(WeChatAPIError):
    """40037: the template_id is unknown to this account."""


class ArgumentInvalid(WeChatAPIError):
    """47003: a template field value breaks its rule (e.g. a ``thing`` over 20 characters)."""


class InvalidOpenid(WeChatAPIError):
    """40003: the openid does not belong to this account."""


class TypingRejected(WeChatAPIError):
    """45080 (no interaction in the last 30 s) or 45081 (already typing)."""


class InvalidMenu(WeChatAPIError):
    """400xx menu rule: button counts, name/key/url byte lengths, button types."""


_MENU_CODES = (40016, 40017, 40018, 40019, 40020, 40023, 40024, 40025, 40026, 40027)

ERRORS: dict[int, type[WeChatAPIError]] = {
    -1: SystemBusy,
    40001: AccessTokenInvalid,
    40014: AccessTokenInvalid,
    42001: AccessTokenInvalid,
    40013: CredentialError,
    40125: CredentialError,
    40164: CredentialError,
    40243: CredentialError,
    45009: QuotaExceeded,
    45015: OutOfWindow,
    45047: ResponseLimit,
    43004: Unfollowed,
    40007: InvalidMedia,
    40037: InvalidTemplate,
    47003: ArgumentInvalid,
    40003: InvalidOpenid,
    45080: TypingRejected,
    45081: TypingRejected,
    **dict.fromkeys(_MENU_CODES, InvalidMenu),
}


def api_error(errcode: int, errmsg: str) -> WeChatAPIError:
    """The exception for one WeChat answer; ``errmsg``'s trailing ``rid: ...`` becomes ``.rid``."""
    match = _RID.search(errmsg)
    rid = match.group(1) if match else ""
    message = errmsg[: match.start()] if match else errmsg
    return ERRORS.get(errcode, WeChatAPIError)(errcode, message, rid)
