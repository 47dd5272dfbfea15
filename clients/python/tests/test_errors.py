"""
An answer's error as the exception it stands for: one class per code of the API, the API's own
code kept, and nothing shaped like a secret in any text an exception shows; a pool name the API
would refuse refused before any request. Pure: no server.
"""

from __future__ import annotations

import pytest

from keypool_client import InvalidRequest, Keypool, KeypoolApiError, KeypoolError, NoUsableKey
from keypool_client.errors import _BY_CODE, error_for


@pytest.mark.parametrize("code", sorted(_BY_CODE))
def test_an_answer_with_a_code_is_its_class_and_keeps_the_apis_code(code: str) -> None:
    # Act: forbidden_host and forbidden_origin (the local server's) included, under AccessDenied
    error = error_for(418, {"error": code, "message": f"refused: {code}"})
    # Assess
    assert isinstance(error, _BY_CODE[code]) and not isinstance(error, KeypoolApiError)
    assert (error.code, error.status, error.message) == (code, 418, f"refused: {code}")


def test_the_details_of_a_refusal_hold_no_secret_that_an_answer_in_between_echoes() -> None:
    # Prepare: a gateway between the client and keypool echoes a secret in a refused field
    secret = "sk-live-0123456789abcdefABCDEF"
    body = {
        "error": "invalid_request",
        "message": "refused",
        "details": [{"path": f"headers.{secret}", "message": f"got {secret}"}, "not a field", {"path": 3}],
    }
    # Act
    error = error_for(400, body)
    # Assess: each detail is text, masked as messages are; what is not a field is left out
    assert isinstance(error, InvalidRequest) and isinstance(error, KeypoolError)
    assert error.details == [{"path": "headers.sk-...", "message": "got sk-..."}, {"path": "", "message": ""}]
    assert secret[3:] not in repr(error.details)


def test_a_dry_pools_refusal_carries_why_its_keys_are_not_usable_in_the_apis_shape_only() -> None:
    # Prepare
    unusable = {"overCap": 4, "cooling": 1, "suspect": 0, "exhausted": 0, "disabled": 1, "undecryptable": 0, "accountExhausted": 0}
    dry = {"error": "no_usable_key", "message": "dry", "retryAfterSeconds": 42}
    counted = {"countedAt": "2026-12-07T05:40:00.000Z", "nextReturnAt": "2026-12-07T05:40:42.000Z"}
    # Act
    full = error_for(409, {**dry, "unusable": unusable, **counted})
    bare = error_for(409, dry)
    malformed = error_for(409, {**dry, "unusable": {**unusable, "cooling": True}, "countedAt": "sk-live-0123456789abcdef"})
    # Assess
    assert isinstance(full, NoUsableKey) and isinstance(bare, NoUsableKey) and isinstance(malformed, NoUsableKey)
    assert (full.retry_after, full.unusable, full.counted_at, full.next_return_at) == (
        42,
        unusable,
        counted["countedAt"],
        counted["nextReturnAt"],
    )
    assert (bare.retry_after, bare.unusable, bare.counted_at, bare.next_return_at) == (42, None, None, None)
    assert (malformed.unusable, malformed.counted_at) == (None, None)


@pytest.mark.parametrize("name", ["", ".", "..", "../keys", "a" * 65, "stability\n", "stability/x", "stäbility"])
def test_a_pool_name_the_api_refuses_is_a_value_error_before_anything_is_sent(name: str) -> None:
    # Act / Assess: the name becomes a path segment; a trailing newline is no exception
    with pytest.raises(ValueError, match="a pool is 1-64 letters"):
        Keypool("http://127.0.0.1:9").pool(name)
