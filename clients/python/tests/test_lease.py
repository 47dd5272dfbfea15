"""Leases against the real local stack: what each way of ending a lease does to the key's count and status."""

from __future__ import annotations

import time

import pytest
from botocore.credentials import Credentials
from conftest import Operator

from keypool_client import (
    InvalidRequest,
    KeyNotFound,
    Keypool,
    LeaseExpired,
    NoUsableKey,
    PoolNotFound,
    key_id_for,
)


def test_a_block_that_ends_normally_completes_success_and_the_use_stays_counted(
    api_url: str, operator: Operator
) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1, maxUses=3)
    # Act
    with Keypool(api_url).pool(pool).lease() as key:
        seen = (key.api_key, key.key_id, key.usage_count)
    # Assess
    assert seen == (secret, key_id_for(secret), 0)
    assert key.outcome == "success"
    assert key.completion is not None and key.completion.usage_count == 1
    stored = operator.keys(pool)[key_id_for(secret)]
    assert (stored["usageCount"], stored["status"]) == (1, "active")


def test_a_block_that_raises_completes_unknown_keeps_the_use_and_reraises(api_url: str, operator: Operator) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1)
    lease_pool = Keypool(api_url).pool(pool)
    # Act
    with pytest.raises(TimeoutError, match="provider took too long"):
        with lease_pool.lease() as key:
            raise TimeoutError("provider took too long")
    # Assess: counted (the provider may have billed it), and the slot is free for the next lease
    assert key.outcome == "unknown"
    stored = operator.keys(pool)[key_id_for(secret)]
    assert (stored["usageCount"], stored["status"]) == (1, "active")
    with lease_pool.lease() as again:
        assert again.usage_count == 1


def test_failed_inside_the_block_gives_the_use_back_and_the_block_end_changes_nothing(
    api_url: str, operator: Operator
) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1)
    # Act
    with Keypool(api_url).pool(pool).lease() as key:
        key.failed()
    # Assess
    assert key.outcome == "failure"
    stored = operator.keys(pool)[key_id_for(secret)]
    assert (stored["usageCount"], stored["status"]) == (0, "active")


def test_rate_limited_rests_the_key_for_the_retry_after_and_gives_the_use_back(
    api_url: str, operator: Operator
) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1)
    client = Keypool(api_url)
    # Act
    with client.pool(pool).lease() as key:
        key.rate_limited(retry_after="30")  # a Retry-After header as the provider sent it
    with pytest.raises(NoUsableKey) as dry:
        client.pool(pool).lease()
    # Assess
    stored = operator.keys(pool)[key_id_for(secret)]
    assert (stored["usageCount"], stored["status"]) == (0, "cooling")
    assert dry.value.retry_after is not None and 25 <= dry.value.retry_after <= 30


def test_invalid_sets_the_key_aside_as_suspect_and_gives_the_use_back(api_url: str, operator: Operator) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1)
    # Act
    with Keypool(api_url).pool(pool).lease() as key:
        key.invalid()
    # Assess
    stored = operator.keys(pool)[key_id_for(secret)]
    assert (stored["usageCount"], stored["status"]) == (0, "suspect")


def test_a_lease_completed_by_hand_reports_once(api_url: str, operator: Operator) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1)
    key = Keypool(api_url).pool(pool).lease()
    # Act
    first = key.succeeded()
    repeated = key.succeeded()
    # Assess: one use; another outcome after it is refused here, before it reaches keypool
    assert first == repeated and first is not None and first.usage_count == 1
    with pytest.raises(ValueError, match="already completed as success"):
        key.failed()
    assert operator.keys(pool)[key_id_for(secret)]["usageCount"] == 1


def test_max_uses_is_a_lower_cap_and_above_the_pool_cap_is_refused_naming_it(api_url: str, operator: Operator) -> None:
    # Prepare: the only key has been used twice
    pool, [secret] = operator.pool(keys=1, maxUses=3)
    operator.set_count(pool, key_id_for(secret), 2)
    lease_pool = Keypool(api_url).pool(pool)
    # Act / Assess
    with pytest.raises(NoUsableKey):
        lease_pool.lease(max_uses=1)
    with lease_pool.lease(max_uses=2) as key:
        assert key.usage_count == 2
    with pytest.raises(InvalidRequest) as above:
        lease_pool.lease(max_uses=4)
    assert above.value.status == 400
    assert {"path": "body.maxUses", "message": f'at most 3 in pool "{pool}"'} in above.value.details


def test_a_lease_past_its_ttl_keeps_its_use_and_a_late_refund_is_refused(api_url: str, operator: Operator) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1)
    key = Keypool(api_url).pool(pool).lease(ttl_seconds=1)
    # Act
    time.sleep(2.2)
    with pytest.raises(LeaseExpired):
        key.failed()
    # Assess
    assert key.outcome is None
    assert operator.keys(pool)[key_id_for(secret)]["usageCount"] == 1


def test_increment_counts_a_use_without_a_lease_by_the_secret(api_url: str, operator: Operator) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1, maxUses=1)
    lease_pool = Keypool(api_url).pool(pool)
    # Act: no cap applies to a lease-less count
    counts = [lease_pool.increment_usage(secret) for _ in range(3)]
    # Assess
    assert counts == [1, 2, 3]
    assert operator.keys(pool)[key_id_for(secret)]["usageCount"] == 3


def test_errors_name_what_is_missing_and_never_hold_a_secret(api_url: str, operator: Operator) -> None:
    # Prepare
    pool, _ = operator.pool(keys=1)
    stranger = "sk-test-not-in-this-pool-0123456789abcdef"
    client = Keypool(api_url)
    # Act
    with pytest.raises(KeyNotFound) as unknown_key:
        client.pool(pool).increment_usage(stranger)
    with pytest.raises(PoolNotFound) as unknown_pool:
        client.pool(f"{pool}-absent").lease()
    lease = client.pool(pool).lease()
    shown = repr(lease)
    lease.succeeded()
    # Assess
    assert unknown_key.value.status == 404 and stranger not in str(unknown_key.value)
    assert unknown_pool.value.status == 404
    assert lease.api_key not in shown and lease.key_id in shown


def test_key_ids_computed_here_are_the_ids_keypool_gives(operator: Operator) -> None:
    # Prepare
    pool, _ = operator.pool(keys=0)
    secrets_ = ["sk-test-0123456789abcdef0123", "sk-test-short9"]
    # Act
    imported = operator.import_keys(pool, secrets_)
    # Assess
    assert [key["keyId"] for key in imported] == [key_id_for(s) for s in secrets_]


def test_signed_requests_are_served_like_unsigned_ones_by_the_local_stack(api_url: str, operator: Operator) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1)
    client = Keypool(api_url, credentials=Credentials("AKIDEXAMPLE", "fake-secret-for-tests"))
    # Act
    with client.pool(pool).lease() as key:
        leased = key.api_key
    # Assess
    assert client.signs and leased == secret
    assert operator.keys(pool)[key_id_for(secret)]["usageCount"] == 1
