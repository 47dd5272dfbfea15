"""keypool's answers as exceptions: one class per `error` code of the API, mapped in one place.

Messages are the API's own (which never hold a secret) or written here from the status; no
exception ever carries an API key.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Type


class KeypoolError(Exception):
    """
    Any refusal or failure of keypool. `code` is the API's `error` code, `status` its HTTP
    status, `retry_after` the seconds the answer asked to wait (Retry-After), when it did.
    """

    code: str = "keypool_error"

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        retry_after: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        if code is not None:
            self.code = code


class InvalidRequest(KeypoolError):
    """400: a malformed or out-of-range request, or a `max_uses`/`ttl_seconds` above the pool's policy."""

    code = "invalid_request"

    def __init__(
        self, message: str, *, status: Optional[int] = 400, details: Optional[List[Dict[str, str]]] = None
    ) -> None:
        super().__init__(message, status=status)
        #: each refused field: `{"path": "body.maxUses", "message": "at most 2 in pool ..."}`
        self.details: List[Dict[str, str]] = details or []


class AccessDenied(KeypoolError):
    """403: IAM refused the request (unsigned, or signed by someone without this pool's client policy)."""

    code = "access_denied"


class PoolNotFound(KeypoolError):
    """404: no such pool."""

    code = "pool_not_found"


class KeyNotFound(KeypoolError):
    """404: no such key in this pool."""

    code = "key_not_found"


class LeaseNotFound(KeypoolError):
    """404: no such lease in this pool (or an operator's reset ended it)."""

    code = "lease_not_found"


class NoUsableKey(KeypoolError):
    """
    409: the pool has no key under the cap. `retry_after`: seconds until a cooling key comes
    back, if any. Why the pool is dry, when keypool had a count to give in time (else None):
    `unusable`, its keys a lease could not use by why (`overCap`, `cooling`, `suspect`,
    `exhausted`, `disabled`, `undecryptable`, `accountExhausted`); `counted_at`, when they were
    counted (ISO 8601, at most a minute before); `next_return_at`, the earliest end of a rest.
    """

    code = "no_usable_key"

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = 409,
        code: Optional[str] = None,
        retry_after: Optional[int] = None,
        unusable: Optional[Dict[str, int]] = None,
        counted_at: Optional[str] = None,
        next_return_at: Optional[str] = None,
    ) -> None:
        super().__init__(message, status=status, code=code, retry_after=retry_after)
        self.unusable = unusable
        self.counted_at = counted_at
        self.next_return_at = next_return_at


class IdempotencyConflict(KeypoolError):
    """409: the Idempotency-Key names a lease that no longer stands (completed, expired, key out of the pool) or
    another caller's; proxy: another caller's request, or one the provider may have billed with no answer kept to
    replay (a 2xx not kept, or no answer after it went out)."""

    code = "idempotency_conflict"


class PoolNotEmpty(KeypoolError):
    """409: the pool still holds keys that are not retired (delete it with `retireKeys=true`)."""

    code = "pool_not_empty"


class KeyNotSealed(KeypoolError):
    """409: a key stored before sealing cannot be retired until `keypool reseal` has sealed it."""

    code = "key_not_sealed"


class LeaseExpired(KeypoolError):
    """410: the lease ended before it was completed; its use stays counted."""

    code = "lease_expired"


class PayloadTooLarge(KeypoolError):
    """413: the request body is over the API's limit."""

    code = "payload_too_large"


class ReportBudgetExceeded(KeypoolError):
    """429: this caller made more negative reports and lease-less counts this minute than the pool allows; nothing was counted."""

    code = "report_budget_exceeded"


class SealingUnavailable(KeypoolError):
    """503: the key service that opens stored secrets failed; nothing was counted. Retry after `retry_after` seconds."""

    code = "sealing_unavailable"


class SealingMisconfigured(KeypoolError):
    """503: a stored secret was sealed under a wrapping key this deployment does not hold; an operator must fix the setting."""

    code = "sealing_misconfigured"


class StoreThrottled(KeypoolError):
    """503: the table was too busy past keypool's bounded retries; nothing says the pool is dry. Retry after `retry_after`."""

    code = "store_throttled"


class NoProvider(KeypoolError):
    """409: a proxy request to a pool with no provider (`provider: none`); nothing was called."""

    code = "no_provider"


class PathNotAllowed(KeypoolError):
    """403: a proxy path the pool's provider does not allow (the account and balance endpoints among them)."""

    code = "path_not_allowed"


class JobNotFound(KeypoolError):
    """404: a job id keypool did not start in this pool (or whose pin expired after 24 h)."""

    code = "job_not_found"


class RequestInProgress(KeypoolError):
    """409: a proxy request with this Idempotency-Key is still running; retry after `retry_after` seconds for its answer."""

    code = "request_in_progress"


class ProviderFailed(KeypoolError):
    """502: proxy mode reached no answer: no connection to the provider on any key tried, or one that broke after the request went out (its use stays counted)."""

    code = "provider_failed"


class ProviderTimeout(KeypoolError):
    """504: proxy mode's provider call passed the pool's proxyTimeoutSeconds after the request went out: its use stays counted."""

    code = "provider_timeout"


class KeypoolApiError(KeypoolError):
    """Any other answer that is not what the call expects (`code` says which: `internal_error`, `not_found`, ...)."""

    code = "http_error"


class KeypoolUnavailable(KeypoolError):
    """keypool could not be reached (connection refused, reset, timeout) after the client's own retries."""

    code = "unavailable"


_BY_CODE: Mapping[str, Type[KeypoolError]] = {
    "invalid_request": InvalidRequest,
    "pool_not_found": PoolNotFound,
    "key_not_found": KeyNotFound,
    "lease_not_found": LeaseNotFound,
    "no_usable_key": NoUsableKey,
    "idempotency_conflict": IdempotencyConflict,
    "pool_not_empty": PoolNotEmpty,
    "key_not_sealed": KeyNotSealed,
    "lease_expired": LeaseExpired,
    "payload_too_large": PayloadTooLarge,
    "report_budget_exceeded": ReportBudgetExceeded,
    "sealing_unavailable": SealingUnavailable,
    "sealing_misconfigured": SealingMisconfigured,
    "store_throttled": StoreThrottled,
    "no_provider": NoProvider,
    "path_not_allowed": PathNotAllowed,
    "job_not_found": JobNotFound,
    "request_in_progress": RequestInProgress,
    "provider_failed": ProviderFailed,
    "provider_timeout": ProviderTimeout,
    "forbidden_host": AccessDenied,
    "forbidden_origin": AccessDenied,
}

#: codes every caller meets only as a bug or a misrouted request: KeypoolApiError carries them by `code`
GENERIC_CODES = ("not_found", "method_not_allowed", "unsupported_media_type", "internal_error")


#: An AWS-looking credential, a provider key or any long token: masked wherever a text from outside is shown.
_SECRET_SHAPED = re.compile(r"sk-[A-Za-z0-9_-]{8,}|[A-Za-z0-9_\-+/=]{32,}")
_UUID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.IGNORECASE)


def safe_text(text: str) -> str:
    """
    A text from outside (an answer's message or code) as an exception may show it: at most 500
    characters, anything shaped like a secret masked. keypool's messages hold none; a gateway or
    proxy in between might echo one. A UUID (a request id) stays whole. The TypeScript client's rule.
    """
    masked = _SECRET_SHAPED.sub(lambda run: run.group(0) if _UUID.match(run.group(0)) else f"{run.group(0)[:3]}...", text)
    return masked[:500]


def retry_after_of(body: Any, header: Optional[str]) -> Optional[int]:
    """The wait an answer asks for, in whole seconds: the body's `retryAfterSeconds`, else a Retry-After of digits."""
    if isinstance(body, dict):
        seconds = body.get("retryAfterSeconds")
        if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
            return seconds
    value = (header or "").strip()
    # isascii: str.isdigit also takes superscripts and other scripts' digits, which int() refuses.
    if value.isascii() and value.isdigit() and len(value) <= 6 and int(value) > 0:
        return int(value)
    return None


_UNUSABLE_FIELDS = ("overCap", "cooling", "suspect", "exhausted", "disabled", "undecryptable", "accountExhausted")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def _dry_pool(body: Dict[str, Any]) -> Dict[str, Any]:
    """A no_usable_key answer's account of its pool, as NoUsableKey's arguments: each part kept only in the API's shape."""
    counts = body.get("unusable")
    whole = isinstance(counts, dict) and all(
        isinstance(counts.get(name), int) and not isinstance(counts.get(name), bool) and counts[name] >= 0
        for name in _UNUSABLE_FIELDS
    )

    def time(value: Any) -> Optional[str]:
        return value if isinstance(value, str) and _ISO_TIME.fullmatch(value) else None

    return {
        "unusable": {name: counts[name] for name in _UNUSABLE_FIELDS} if whole and isinstance(counts, dict) else None,
        "counted_at": time(body.get("countedAt")),
        "next_return_at": time(body.get("nextReturnAt")),
    }


def _details(body: Dict[str, Any]) -> List[Dict[str, str]]:
    """A 400's refused fields as text an exception may show (safe_text), each `{"path", "message"}`."""
    listed = body.get("details")

    def text(value: Any) -> str:
        return safe_text(value) if isinstance(value, str) else ""

    return [
        {"path": text(item.get("path")), "message": text(item.get("message"))}
        for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, dict)
    ]


def error_for(status: int, body: Any, retry_after_header: Optional[str] = None, *, signed: bool = True) -> KeypoolError:
    """The exception for an answer of keypool (or of the API Gateway in front of it) that is not a success."""
    retry_after = retry_after_of(body, retry_after_header)
    code = body.get("error") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    text = safe_text(message) if isinstance(message, str) else f"keypool answered {status}"
    if isinstance(code, str):
        cls = _BY_CODE.get(code)
        if cls is InvalidRequest:
            return InvalidRequest(text, status=status, details=_details(body))
        if cls is NoUsableKey:
            return NoUsableKey(text, status=status, retry_after=retry_after, **_dry_pool(body))
        if cls is not None:
            # The API's code, also where one class stands for several (AccessDenied: forbidden_host, ...).
            return cls(text, status=status, code=code, retry_after=retry_after)
        return KeypoolApiError(text, status=status, code=safe_text(code)[:64], retry_after=retry_after)
    # Not keypool's shape: API Gateway's own answer (IAM's 403, throttling's 429, ...).
    if status == 403:
        hint = "" if signed else " (the request went unsigned: no AWS credentials were found)"
        return AccessDenied(f"{text}{hint}", status=status)
    return KeypoolApiError(text, status=status, retry_after=retry_after)
