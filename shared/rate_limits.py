"""Rate limits per client address and per subject, so that abuse costs the abuser.

Requests that fail authentication are counted per client address; past the limit the
address gets 429 instead of 401 (a valid token is still honoured). Authenticated requests
are counted per subject (a stolen or runaway token cannot flood a service). Limits use the
``limits`` library's sliding-window counters, kept in the process: each replica limits on
its own. Behind a proxy the client address is the proxy's unless uvicorn trusts its
forwarded headers (``FORWARDED_ALLOW_IPS``).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.problems import TooManyRequests

OFF = "off"


class RateLimitSettings(BaseSettings):
    """Limits in the ``limits`` notation (``60/minute``, ``10/second``), or ``off``."""

    model_config = SettingsConfigDict(env_prefix="HAVEN_RATE_LIMIT_", extra="ignore")

    per_address: str = Field(
        "60/minute",
        description="Requests that fail authentication one client address may make.",
    )
    per_subject: str = Field(
        "6000/minute",
        description="Requests one authenticated subject may make (a device syncing its "
        "offline queue sends bursts; the benchmark's desks share one subject).",
    )

    @field_validator("per_address", "per_subject")
    @classmethod
    def _parsable(cls, value: str) -> str:
        if value != OFF:
            parse(value)  # raises ValueError with the library's explanation
        return value


class TooManyAttempts(TooManyRequests):
    type_slug, title = "rate-limited", "Too many requests"


class RateLimiter:
    """One limit over keys (addresses or subjects); ``None`` limit: never limits."""

    def __init__(self, limit: str) -> None:
        self.item: RateLimitItem | None = None if limit == OFF else parse(limit)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def hit(self, key: str) -> None:
        """Count one request of ``key``; :class:`TooManyAttempts` when it is one too many."""
        if self.item is not None and not self._limiter.hit(self.item, key):
            self._refuse(key)

    def _refuse(self, key: str) -> None:
        assert self.item is not None
        reset, _ = self._limiter.get_window_stats(self.item, key)
        retry_after = max(1, math.ceil(reset - time.time()))
        raise TooManyAttempts(
            "Too many requests; wait before trying again.",
            headers={"Retry-After": str(retry_after)},
        )
