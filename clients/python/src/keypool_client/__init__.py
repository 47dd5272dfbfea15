"""
keypool_client: lease API keys from a keypool pool.

    from keypool_client import Keypool

    kp = Keypool("https://abc123.execute-api.eu-west-1.amazonaws.com")
    with kp.pool("stability").lease() as key:
        call_the_provider(key.api_key)      # success on a normal exit, unknown on an exception

The old system's calls live in `keypool_client.compat`; `python -m keypool_client --list` and
`--find` list a pool and show the key a lease would take.
"""

from .client import KeyInfo, Keypool, Pool, PoolPolicy
from .errors import (
    AccessDenied,
    IdempotencyConflict,
    InvalidRequest,
    JobNotFound,
    KeyNotFound,
    KeyNotSealed,
    KeypoolApiError,
    KeypoolError,
    KeypoolUnavailable,
    LeaseExpired,
    LeaseNotFound,
    NoProvider,
    NoUsableKey,
    PathNotAllowed,
    PayloadTooLarge,
    PoolNotEmpty,
    PoolNotFound,
    ProviderFailed,
    ProviderTimeout,
    ReportBudgetExceeded,
    RequestInProgress,
    SealingMisconfigured,
    SealingUnavailable,
    StoreThrottled,
)
from .keys import key_id_for
from .lease import Completion, Lease

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "Completion",
    "IdempotencyConflict",
    "InvalidRequest",
    "JobNotFound",
    "KeyInfo",
    "KeyNotFound",
    "KeyNotSealed",
    "Keypool",
    "KeypoolApiError",
    "KeypoolError",
    "KeypoolUnavailable",
    "Lease",
    "LeaseExpired",
    "LeaseNotFound",
    "NoProvider",
    "NoUsableKey",
    "PathNotAllowed",
    "PayloadTooLarge",
    "Pool",
    "PoolNotEmpty",
    "PoolNotFound",
    "PoolPolicy",
    "ProviderFailed",
    "ProviderTimeout",
    "ReportBudgetExceeded",
    "RequestInProgress",
    "SealingMisconfigured",
    "SealingUnavailable",
    "StoreThrottled",
    "key_id_for",
]
