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

    def replies(self, openid: str) -> str:
        """Index of the student's cached replies (a sorted set of dedup keys by time), so an erasure
        finds them without scanning the keyspace."""
        return self.user(openid) + ":ds"

    def access_token(self) -> str:
        return f"{self.prefix}:{self.appid}:token"

    def access_token_lock(self) -> str:
        return f"{self.prefix}:{self.appid}:token:lock"

    def job_stream(self) -> str:
        """The Redis stream the background-job broker reads (one per prefix and account)."""
        return f"{self.prefix}:{self.appid}:jobs"

    def job_once(self, openid: str, idem_key: str) -> str:
        """Set when a job for ``idem_key`` is queued, so a second enqueue of the same work is a no-op."""
        return self.user(openid) + ":job:" + idem_key

    def job_runs(self, openid: str, idem_key: str) -> str:
        """How many times a job has started; stops a job that keeps killing its worker."""
        return self.user(openid) + ":jobn:" + idem_key

    def cs_sent(self, openid: str, idem_key: str, index: int) -> str:
        """Claim ("C") and then proof ("S") that message ``index`` of a job went out."""
        return f"{self.user(openid)}:cs:{idem_key}:{index}"

    def identity_verification(self, digest: str) -> str:
        """Cached real-name verdict; ``digest`` is an HMAC of the inputs, never a name or ID number."""
        return f"{self.prefix}:{self.appid}:idv:{digest}"

    def console_session(self, sid: str) -> str:
        """A staff console session (user, role, schools, CSRF token); ``sid`` is the random cookie value."""
        return f"{self.prefix}:{self.appid}:console:s:{sid}"

    def console_failures(self, scope: str, who: str) -> str:
        """Failed console logins counted per ``scope`` ("user" or "ip") for rate limiting and lockout."""
        return f"{self.prefix}:{self.appid}:console:fail:{scope}:{who}"

    def notify_bucket(self, name: str) -> str:
        """Token bucket of one template-message sender (a broadcast), shared by every worker."""
        return f"{self.prefix}:{self.appid}:notify:bucket:{name}"

    def notify_day(self, day: str) -> str:
        """Broadcast template sends counted per day (``YYYYMMDD``, China time) against the daily limit."""
        return f"{self.prefix}:{self.appid}:notify:day:{day}"

    def notify_pause(self) -> str:
        """Set (with an expiry) while template sends are paused: WeChat answered 45009 (quota)."""
        return f"{self.prefix}:{self.appid}:notify:pause"

    def broadcast_slot(self, broadcast_id: int, slot: int) -> str:
        """Which sender job holds slot ``slot`` of a broadcast (value: its token; expires if it dies)."""
        return f"{self.prefix}:{self.appid}:bc:{broadcast_id}:slot:{slot}"

    def broadcast_step(self, broadcast_id: int, slot: int, step: str) -> str:
        """Set once per continuation or respawn of a slot, so a re-run job cannot fork the chain."""
        return f"{self.prefix}:{self.appid}:bc:{broadcast_id}:slot:{slot}:{step}"

    def retention_run(self, day: str) -> str:
        """Set by the worker that runs the nightly retention of day ``YYYYMMDD`` (one run per night)."""
        return f"{self.prefix}:{self.appid}:retention:{day}"

    def reconcile_lease(self) -> str:
        """Held by the process running this interval's payment reconciliation round (storage/lease.py)."""
        return f"{self.prefix}:{self.appid}:pay:reconcile"

    def notify_requeued(self, client_msg_id: str) -> str:
        """Set while a job is on a pending notification (queued again by a ticker, or trying to send it),
        so tickers queue it only once; the delivery job clears it when it ends."""
        return f"{self.prefix}:{self.appid}:notify:requeued:{client_msg_id}"

    def namespace(self) -> str:
        """Pattern covering every key of this prefix (tests clean up with it)."""
        return f"{self.prefix}:*"
