"""The access token, remembered in the process for a few seconds between template sends.

A broadcast sends hundreds of messages a second; reading the shared token from Redis before each one
is a round trip per message for a value that changes every two hours. This wrapper keeps the last
token for ``keep`` seconds. When WeChat rejects it (40001), the API client invalidates it: the local
copy is dropped at once and the shared cache decides, as before, whether to refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from storage.tokens import CachedToken, Fetch, TokenCache


class LocalTokenCache:
    def __init__(self, shared: TokenCache, keep: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.shared = shared
        self.keep = keep
        self.clock = clock
        self._token: CachedToken | None = None
        self._until = 0.0

    async def get(self, fetch: Fetch) -> CachedToken:
        if self._token is not None and self.clock() < self._until:
            return self._token
        token = await self.shared.get(fetch)
        self._token, self._until = token, self.clock() + self.keep
        return token

    async def invalidate(self, token: CachedToken) -> bool:
        if self._token == token:
            self._token = None
        return await self.shared.invalidate(token)
