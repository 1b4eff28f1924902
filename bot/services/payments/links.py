"""Pay links and payer cookies: sealed, expiring tokens with no readable personal data.

A token is AES-256-GCM under a key derived from GRADBOT_PAY_LINK_SECRET (or, without it, from
settings every worker shares; see :func:`bot.services.payments.config.link_secret`). GCM's tag makes
it tamper-evident like an HMAC, and the encryption keeps the openid and what is being paid for out
of the URL, browser history and access logs. The expiry and the token's purpose are authenticated
too, so a payer cookie cannot be replayed as a link or the other way round.

Layout (base64url, no padding): version (1 byte) | expires (4 bytes, unix seconds) | nonce (12) |
ciphertext+tag. A link is about 110 characters: short enough for WeChat's OAuth ``state``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
LINK_TTL = 7 * 86400
PAYER_TTL = 2 * 3600
_HEAD = struct.Struct(">BI")


class TokenInvalid(ValueError):
    """Not one of our tokens, tampered with, or sealed for another purpose."""


class TokenExpired(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """Who pays for what: enough to find or open the order when the page is opened."""

    openid: str
    procedure: str
    item: str
    school: str = "*"


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, purpose: str, payload: dict[str, Any], expires: float) -> str:
        head = _HEAD.pack(VERSION, int(expires))
        nonce = os.urandom(12)
        plain = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        sealed = self._aead.encrypt(nonce, plain, head + purpose.encode())
        return base64.urlsafe_b64encode(head + nonce + sealed).rstrip(b"=").decode("ascii")

    def open(self, purpose: str, token: str, now: float) -> dict[str, Any]:
        raw = _decode(token)
        if len(raw) < _HEAD.size + 12 + 16:
            raise TokenInvalid("too short")
        head, nonce, sealed = raw[:_HEAD.size], raw[_HEAD.size:_HEAD.size + 12], raw[_HEAD.size + 12:]
        version, expires = _HEAD.unpack(head)
        try:
            plain = self._aead.decrypt(nonce, sealed, head + purpose.encode())
        except InvalidTag:
            raise TokenInvalid("bad tag") from None
        if version != VERSION:
            raise TokenInvalid("unknown version")
        if now >= expires:
            raise TokenExpired("expired")
        payload = json.loads(plain)
        if not isinstance(payload, dict):
            raise TokenInvalid("not an object")
        return payload

    # -- the two kinds of token ----------------------------------------------------------------

    def link(self, claims: LinkClaims, now: float, ttl: float = LINK_TTL) -> str:
        payload = {"o": claims.openid, "p": claims.procedure, "i": claims.item, "s": claims.school}
        return self.seal("link", payload, now + ttl)

    def open_link(self, token: str, now: float) -> LinkClaims:
        payload = self.open("link", token, now)
        try:
            return LinkClaims(str(payload["o"]), str(payload["p"]), str(payload["i"]), str(payload["s"]))
        except KeyError:
            raise TokenInvalid("incomplete") from None

    def payer(self, openid: str, now: float) -> str:
        return self.seal("payer", {"o": openid}, now + PAYER_TTL)

    def open_payer(self, token: str, now: float) -> str:
        return str(self.open("payer", token, now).get("o", ""))


def _decode(token: str) -> bytes:
    if not token or len(token) > 512:
        raise TokenInvalid("empty or too long")
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("not base64url") from None
