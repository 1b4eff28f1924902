"""A lease in Redis: one holder at a time across every process and machine, for as long as it renews.

``SET key token NX PX`` takes it; a holder keeps it with :meth:`Lease.renew` (compare-and-pexpire, so
a holder whose lease already passed to another cannot extend the other's). Nothing deletes it: a
holder that dies simply stops renewing and the key expires after ``ttl`` seconds, so another process
takes over. Used for periodic work that must run once per interval, not once per process
(payment reconciliation, docs/payments.md).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import redis.asyncio as aioredis

# Extend the lease only if the caller still holds it.
_RENEW_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


@dataclass
class Lease:
    client: aioredis.Redis
    key: str
    ttl: float  # seconds
    token: str = field(default_factory=lambda: secrets.token_hex(12))

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this holder now has it for ``ttl``."""
        return bool(await self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        """Another ``ttl`` from now; False when the lease expired or passed to another holder."""
        return bool(await self.client.eval(_RENEW_IF_HELD, 1, self.key, self.token, self.ttl_ms))
