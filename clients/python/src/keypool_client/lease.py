"""A leased key and the one completion it owes keypool."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Dict, Optional, Protocol, Type, Union

from .errors import KeypoolError, LeaseExpired

_log = logging.getLogger("keypool_client")

#: The outcomes the API takes (README "API reference").
OUTCOMES = ("success", "failure", "invalid_key", "out_of_credits", "rate_limited", "unknown")
#: The API's range for a rate_limited report's Retry-After, seconds.
_RETRY_AFTER_RANGE = (1, 3600)


@dataclass(frozen=True)
class Completion:
    """The key after a completion: its count and status as keypool stored them."""

    key_id: str
    usage_count: int
    status: str
    #: "over_budget" when the caller is past the pool's maxClientReportsPerMinute: the report
    #: changed no status (the use was still counted or given back); None otherwise
    report_ignored: Optional[str] = None


def _retry_after_seconds(retry_after: Union[float, str, None]) -> Optional[int]:
    """
    A provider's Retry-After as the API takes it: whole seconds in 1..3600. A header's text is
    read when it is a number of seconds; None, <= 0 or an HTTP date leave the pool's cooldown.
    """
    if isinstance(retry_after, str):
        text = retry_after.strip()
        # isascii: str.isdigit also takes superscripts and other scripts' digits, which int() refuses.
        retry_after = int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None
    if retry_after is None or not retry_after > 0:
        return None
    low, high = _RETRY_AFTER_RANGE
    return max(low, min(high, math.ceil(retry_after)))


class _Completes(Protocol):
    """What a lease needs of its pool (client.Pool): its name, and the completion call."""

    name: str

    def _complete(self, lease_id: str, outcome: str, retry_after: Optional[int]) -> Completion: ...


class Lease:
    """
    A key of the pool, held until completed. As a context manager it completes itself:
    `success` when the block ends normally, `unknown` when it raises (the call may have
    reached the provider, so the use stays counted; the exception propagates). Inside the
    block, `failed()`, `rate_limited()`, `invalid()` or `out_of_credits()` complete it with
    that outcome instead, and the block's end then changes nothing.
    """

    def __init__(self, pool: "_Completes", grant: Dict[str, Any]) -> None:
        self._pool = pool
        #: the secret: send it to the provider, never to a log
        self.api_key: str = grant["apiKey"]
        self.key_id: str = grant["keyId"]
        self.lease_id: str = grant["leaseId"]
        #: the key's count before this use
        self.usage_count: int = grant["usageCount"]
        #: ISO 8601; past it the use stays counted and completing answers LeaseExpired
        self.expires_at: str = grant["expiresAt"]
        self.pool: str = pool.name
        #: how the lease was completed, and the key after it (None while open)
        self.outcome: Optional[str] = None
        self.completion: Optional[Completion] = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        # Never the secret: a Lease printed or logged shows its ids only.
        return (
            f"Lease(pool={self.pool!r}, key_id={self.key_id!r}, "
            f"usage_count={self.usage_count}, outcome={self.outcome!r})"
        )

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def complete(self, outcome: str = "success", retry_after: Union[float, str, None] = None) -> Optional[Completion]:
        """
        Reports how the use went: `success` keeps it counted, `unknown` too (the provider may
        have billed it), every other outcome gives it back. Once only: a second call with the
        same outcome returns the first answer, another outcome raises ValueError. Returns the
        key after completion; None when the lease had expired and the outcome was success or
        unknown (its use stayed counted, as asked); a refund asked too late raises LeaseExpired.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"keypool: outcome is one of {', '.join(OUTCOMES)}")
        with self._lock:
            if self.outcome is not None:
                if self.outcome != outcome:
                    raise ValueError(f"keypool: lease {self.lease_id} was already completed as {self.outcome}")
                return self.completion
            wait = _retry_after_seconds(retry_after) if outcome == "rate_limited" else None
            try:
                self.completion = self._pool._complete(self.lease_id, outcome, wait)
            except LeaseExpired:
                # What success and unknown ask for, a counted use, is what expiry left; a refund
                # asked too late is the caller's to know about.
                if outcome not in ("success", "unknown"):
                    raise
            self.outcome = outcome
            return self.completion

    def succeeded(self) -> Optional[Completion]:
        """The provider served the call: the use stays counted."""
        return self.complete("success")

    def failed(self) -> Optional[Completion]:
        """The provider did not charge this use (a refused request, a 5xx): the use is given back."""
        return self.complete("failure")

    def rate_limited(self, retry_after: Union[float, str, None] = None) -> Optional[Completion]:
        """
        The provider answered 429: the key rests `retry_after` seconds (a number, or the
        Retry-After header as given; else the pool's cooldown); the use is given back.
        """
        return self.complete("rate_limited", retry_after)

    def invalid(self) -> Optional[Completion]:
        """The provider refused the key (401): it is set aside until maintenance confirms; the use is given back."""
        return self.complete("invalid_key")

    def out_of_credits(self) -> Optional[Completion]:
        """The provider said the key has no credits left (402): the key is exhausted; the use is given back."""
        return self.complete("out_of_credits")

    def __enter__(self) -> "Lease":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self.done:
            return
        outcome = "success" if exc_type is None else "unknown"
        try:
            self.complete(outcome)
        except KeypoolError as error:
            # Either outcome keeps the use counted, and an uncompleted lease keeps it counted
            # when it expires: a failed report loses nothing, so it must not replace the
            # caller's exception or turn a served call into an error.
            _log.warning(
                "keypool: completing lease of key %s as %s failed: %s", self.key_id, outcome, error.code
            )
