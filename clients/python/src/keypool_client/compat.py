"""
The old system's two calls, kept so its callers change one import line and nothing else:

    from keypool_client.compat import StabilityApiKey

    key = StabilityApiKey.find_usable_key(max_uses=3)   # a lease, or None
    ...call the provider with key.api_key...
    StabilityApiKey.increment_usage(key.api_key)          # counts the use

Configured from the environment: KEYPOOL_URL (required), KEYPOOL_POOL (default `stability`),
AWS_REGION. A key that is found and never passed to `increment_usage` keeps its use counted
when its lease expires (the call may have reached the provider); `key.failed()` gives it back.
"""

from __future__ import annotations

import os
import re
import threading
from collections import deque
from datetime import datetime, timezone
from typing import Deque, Dict, List, Optional, Tuple

from .client import Keypool, Pool
from .errors import InvalidRequest, LeaseNotFound, NoUsableKey
from .lease import Lease

DEFAULT_POOL = "stability"
_CAP_IN_MESSAGE = re.compile(r"at most (\d+)")


class _Held:
    """One configuration's client and the leases this process holds, by secret, oldest first."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.leases: Dict[str, Deque[Lease]] = {}
        self.lock = threading.Lock()

    def add(self, lease: Lease) -> None:
        with self.lock:
            self._prune()
            self.leases.setdefault(lease.api_key, deque()).append(lease)

    def take(self, api_key: str) -> Optional[Lease]:
        """The oldest lease of this secret still open, taken out so one call completes it."""
        with self.lock:
            self._prune()
            queue = self.leases.get(api_key)
            lease = queue.popleft() if queue else None
            if queue is not None and not queue:
                del self.leases[api_key]
            return lease

    def _prune(self) -> None:
        # Leases completed another way, or past their expiry (their use stays counted), are forgotten.
        now = datetime.now(timezone.utc)
        for api_key in list(self.leases):
            queue = deque(lease for lease in self.leases[api_key] if not lease.done and _expiry(lease) > now)
            if queue:
                self.leases[api_key] = queue
            else:
                del self.leases[api_key]


def _expiry(lease: Lease) -> datetime:
    return datetime.fromisoformat(lease.expires_at.replace("Z", "+00:00"))


_configurations: Dict[Tuple[str, str, Optional[str]], _Held] = {}
_configurations_lock = threading.Lock()


def _held() -> _Held:
    url = os.environ.get("KEYPOOL_URL", "").strip()
    if not url:
        raise RuntimeError("keypool_client.compat: set KEYPOOL_URL to keypool's API URL (e.g. http://127.0.0.1:3000)")
    pool = os.environ.get("KEYPOOL_POOL", "").strip() or DEFAULT_POOL
    region = os.environ.get("AWS_REGION") or None
    configuration = (url, pool, region)
    with _configurations_lock:
        held = _configurations.get(configuration)
        if held is None:
            held = _Held(Keypool(url, region).pool(pool))
            _configurations[configuration] = held
        return held


def _pool_cap(error: InvalidRequest) -> Optional[List[int]]:
    """For a refusal of `maxUses`: [the pool's cap] when the message names it, else []; None for other refusals."""
    for detail in error.details:
        if isinstance(detail, dict) and detail.get("path") == "body.maxUses":
            named = _CAP_IN_MESSAGE.search(str(detail.get("message", "")))
            return [int(named.group(1))] if named else []
    return None


class StabilityApiKey:
    """The old system's class: `find_usable_key` and `increment_usage`, now over keypool."""

    @classmethod
    def find_usable_key(cls, max_uses: int = 3) -> Optional[Lease]:
        """
        A lease on the least recently used key whose count is <= `max_uses` (or the pool's cap,
        when that is lower), or None when the pool has none. The answer has `.api_key` and
        `.usage_count` (the count before this use), as the old records had.
        """
        held = _held()
        asked: Optional[int] = max_uses
        for _ in range(3):
            try:
                lease = held.pool.lease(max_uses=asked)
            except NoUsableKey:
                return None
            except InvalidRequest as refused:
                # The pool's cap is lower than the caller's: lease under the pool's. The API's
                # refusal names the cap; an application's credentials may not read the policy.
                cap = _pool_cap(refused)
                if cap is None or asked is None:
                    raise
                asked = min(cap[0], max_uses) if cap else None
                continue
            held.add(lease)
            return lease
        raise RuntimeError("keypool_client.compat: the pool's cap kept changing; try again")

    @classmethod
    def increment_usage(cls, api_key: str) -> Optional[int]:
        """
        Counts the use of `api_key`: completes as `success` the oldest lease this process holds
        for it, else counts one use without a lease. Returns the key's count after it (None when
        the lease had expired: its use was counted then).
        """
        held = _held()
        lease = held.take(api_key)
        while lease is not None:
            try:
                completion = lease.succeeded()
                return completion.usage_count if completion else None
            except (ValueError, LeaseNotFound):
                # Completed otherwise in between, or ended by an operator's reset: not this one.
                lease = held.take(api_key)
        return held.pool.increment_usage(api_key)
