"""Silent ``snsapi_base`` web OAuth: who is the WeChat user on the pay page (reference §1.1).

The authorize page is on open.weixin.qq.com; with a stand-in configured (GRADBOT_WECHAT_API_BASE
not the default) the stand-in serves it too (bot/sandbox/oauth_stub.py). A code is single-use and
lives 5 minutes, so the page keeps the resulting openid in a sealed cookie instead of re-using it.
"""

from __future__ import annotations

from urllib.parse import urlencode

import aiohttp

from bot.config import WECHAT_API_DEFAULT, Settings
from bot.services.payments.errors import PaymentError

OPEN_PLATFORM = "https://open.weixin.qq.com"


class OAuthFailed(PaymentError):
    code = "oauth_failed"


def authorize_url(settings: Settings, appid: str, redirect_uri: str, state: str) -> str:
    base = OPEN_PLATFORM if settings.wechat_api_base == WECHAT_API_DEFAULT else settings.wechat_api_base.rstrip("/")
    query = urlencode({"appid": appid, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": "snsapi_base", "state": state})
    return f"{base}/connect/oauth2/authorize?{query}#wechat_redirect"


async def exchange_code(http: aiohttp.ClientSession, settings: Settings, appid: str, code: str) -> str:
    """The openid behind a fresh code; OAuthFailed for a used, expired or unknown code."""
    url = settings.wechat_api_base.rstrip("/") + "/sns/oauth2/access_token"
    params = {"appid": appid, "secret": settings.wechat_secret, "code": code, "grant_type": "authorization_code"}
    try:
        async with http.get(url, params=params, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise OAuthFailed(f"oauth exchange failed: {type(exc).__name__}", retryable=True) from exc
    if not isinstance(data, dict) or data.get("errcode") or not data.get("openid"):
        errcode = data.get("errcode") if isinstance(data, dict) else None
        raise OAuthFailed(f"oauth exchange refused: errcode {errcode}")
    return str(data["openid"])
