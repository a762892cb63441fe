"""The login rate limit: failed logins per username and per client address (`limits`).

Only failures count, so people behind one address (a school's network, the dashboard) who
type their passwords right are never held back; past the limit a login is refused before
its password is even checked. Counts live in this process's memory (one API process), are
forgotten at a restart, and each expires with its window.
"""

import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class LoginLimiter:
    def __init__(self, attempts: int, window_s: int) -> None:
        self._item = RateLimitItemPerSecond(attempts, window_s)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @staticmethod
    def _keys(username: str, address: str) -> list[tuple[str, str]]:
        return [("login-user", username.casefold()), ("login-address", address)]

    def retry_after(self, username: str, address: str) -> int | None:
        """Seconds to wait if either key is past its limit, else None."""
        waits = []
        for key in self._keys(username, address):
            if not self._limiter.test(self._item, *key):
                reset_at = self._limiter.get_window_stats(self._item, *key).reset_time
                waits.append(max(1, math.ceil(reset_at - time.time())))
        return max(waits) if waits else None

    def failed(self, username: str, address: str) -> None:
        for key in self._keys(username, address):
            self._limiter.hit(self._item, *key)
