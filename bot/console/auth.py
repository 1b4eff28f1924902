"""Staff sign-in: argon2 password hashes, server-side sessions in Redis, CSRF tokens, rate limits.

- Passwords: argon2id (argon2-cffi defaults). An unknown username still costs one hash check, so
  timing does not tell which usernames exist.
- Sessions: a random 256-bit id in an HttpOnly, SameSite=Strict cookie (Secure unless turned off for
  plain-http local use); the record (user, role, schools, CSRF token) lives in Redis with a sliding
  expiry. Signing in replaces the anonymous pre-session, so a planted session id is useless.
- CSRF: one token per session, required in every POST (form field ``_csrf`` or header
  ``X-CSRF-Token``), compared in constant time.
- Rate limits: failures are counted per IP (20 per 15 minutes) and per username (5 in a row lock
  the account for 15 minutes); both answer 429.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from storage.keys import KeyBuilder
from storage.sql.staff import StaffUser

COOKIE = "gb_console"
ANON_TTL = 1800
IP_LIMIT, IP_WINDOW = 20, 900
USER_LIMIT, LOCKOUT = 5, 900

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass
class Session:
    sid: str
    csrf: str
    user: str = ""
    role: str = ""
    schools: list[str] = field(default_factory=list)

    @property
    def signed_in(self) -> bool:
        return bool(self.user)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def scope(self) -> list[str] | None:
        """School codes visible to this account; None: all (admins)."""
        return None if self.is_admin else list(self.schools)

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, str(token))


class Sessions:
    def __init__(self, client: aioredis.Redis, keys: KeyBuilder, ttl: int) -> None:
        self.client, self.keys, self.ttl = client, keys, ttl

    async def load(self, sid: str | None) -> Session | None:
        if not sid or len(sid) > 64:
            return None
        key = self.keys.console_session(sid)
        raw = await self.client.get(key)
        if raw is None:
            return None
        data = json.loads(raw)
        if data.get("user"):
            await self.client.expire(key, self.ttl)  # sliding expiry for signed-in sessions
        return Session(sid, data["csrf"], data.get("user", ""), data.get("role", ""), list(data.get("schools", [])))

    async def anonymous(self) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        await self._save(session, ANON_TTL)
        return session

    async def sign_in(self, old: Session | None, user: StaffUser) -> Session:
        """A fresh session id and CSRF token for the signed-in user; the old session is gone."""
        if old is not None:
            await self.end(old)
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user.username, user.role,
                          list(user.schools))
        await self._save(session, self.ttl)
        return session

    async def end(self, session: Session) -> None:
        await self.client.delete(self.keys.console_session(session.sid))

    async def _save(self, session: Session, ttl: int) -> None:
        body = {"csrf": session.csrf, "user": session.user, "role": session.role, "schools": session.schools}
        await self.client.set(self.keys.console_session(session.sid), json.dumps(body), ex=ttl)


def _who(value: str) -> str:
    """Attacker-chosen text never becomes part of a key as is."""
    return hashlib.sha256(value.encode()).hexdigest()[:24]


class LoginLimiter:
    def __init__(self, client: aioredis.Redis, keys: KeyBuilder) -> None:
        self.client, self.keys = client, keys

    async def blocked(self, ip: str, username: str) -> bool:
        ip_count = int(await self.client.get(self.keys.console_failures("ip", _who(ip))) or 0)
        user_count = int(await self.client.get(self.keys.console_failures("user", _who(username))) or 0)
        return ip_count >= IP_LIMIT or user_count >= USER_LIMIT

    async def failed(self, ip: str, username: str) -> None:
        for scope, who, window in (("ip", ip, IP_WINDOW), ("user", username, LOCKOUT)):
            key = self.keys.console_failures(scope, _who(who))
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window)
                await pipe.execute()

    async def succeeded(self, username: str) -> None:
        await self.client.delete(self.keys.console_failures("user", _who(username)))
