"""The only place Redis key names are spelled.

All keys of one student share the hash tag ``{openid}`` so multi-key Lua scripts stay valid on Redis
Cluster. Openids are opaque per-account identifiers, not personal data on their own, so they appear
in keys as they are (docs/privacy.md explains the decision).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyBuilder:
    prefix: str
    appid: str

    def user(self, openid: str) -> str:
        """Common stem of one student's keys; Lua scripts append ``:alive:<t>`` and ``:turn:<t>``."""
        return f"{self.prefix}:{self.appid}:{{{openid}}}"

    def session(self, openid: str) -> str:
        return self.user(openid) + ":s"

    def ticket(self, openid: str) -> str:
        return self.user(openid) + ":tk"

    def serving(self, openid: str) -> str:
        return self.user(openid) + ":srv"

    def dedup(self, openid: str, message_key: str) -> str:
        return self.user(openid) + ":d:" + message_key

    def access_token(self) -> str:
        return f"{self.prefix}:{self.appid}:token"

    def access_token_lock(self) -> str:
        return f"{self.prefix}:{self.appid}:token:lock"

    def namespace(self) -> str:
        """Pattern covering every key of this prefix (tests clean up with it)."""
        return f"{self.prefix}:*"
