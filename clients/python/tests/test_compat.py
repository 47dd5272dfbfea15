"""The old system's calls through keypool_client.compat, against the real local stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from conftest import Operator

from keypool_client import key_id_for
from keypool_client.compat import StabilityApiKey

OLD_PATTERN = Path(__file__).parent / "old_system" / "generate_images.py"


@pytest.fixture()
def compat_pool(api_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Points the compat calls at a pool, as an application's environment would."""

    def use(pool: str) -> None:
        monkeypatch.setenv("KEYPOOL_URL", api_url)
        monkeypatch.setenv("KEYPOOL_POOL", pool)

    return use


def test_the_old_calling_pattern_runs_unchanged_but_for_its_import(api_url: str, operator: Operator) -> None:
    # Prepare: two keys with cap 3 serve eight uses
    pool, secrets_ = operator.pool(keys=2, maxUses=3)
    prompts = ["a lighthouse", "a fox", "please fail", "a boat", "a moon", "a tree", "a cat", "a dog", "one too many"]
    env = dict(os.environ, KEYPOOL_URL=api_url, KEYPOOL_POOL=pool)
    # Act
    run = subprocess.run(
        [sys.executable, str(OLD_PATTERN), *prompts], env=env, capture_output=True, text=True, timeout=60
    )
    # Assess: eight uses found; the failed call, never reported, keeps its use (the lease expires
    # counted), so seven images; the ninth finds no key. No secret in the output.
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines.count("provider error: the provider refused the prompt") == 1
    assert sorted(line for line in lines if line.startswith("using key")) == sorted(
        f"using key with usage_count={n}" for n in (0, 0, 1, 1, 2, 2, 3, 3)
    )
    assert lines[-2:] == ["No usable Stability API key found", "generated 7 image(s)"]
    assert [key["usageCount"] for key in operator.keys(pool).values()] == [4, 4]
    assert not any(secret in run.stdout + run.stderr for secret in secrets_)


def test_increment_usage_completes_the_lease_this_process_holds_for_that_key(
    operator: Operator, compat_pool: Callable[[str], None]
) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1)
    compat_pool(pool)
    key = StabilityApiKey.find_usable_key(max_uses=3)
    assert key is not None
    # Act
    count = StabilityApiKey.increment_usage(key.api_key)
    # Assess: one use (the lease's), completed as success, not a second lease-less count
    assert (key.api_key, key.usage_count, count) == (secret, 0, 1)
    assert key.outcome == "success"
    assert operator.keys(pool)[key_id_for(secret)]["usageCount"] == 1


def test_increment_usage_without_a_held_lease_counts_one_use_without_one(
    operator: Operator, compat_pool: Callable[[str], None]
) -> None:
    # Prepare: the key was leased by someone else (another process), not by this one
    pool, [secret] = operator.pool(keys=1)
    compat_pool(pool)
    operator.lease_raw(pool)
    # Act
    count = StabilityApiKey.increment_usage(secret)
    # Assess
    assert count == 2
    assert operator.keys(pool)[key_id_for(secret)]["usageCount"] == 2


def test_find_usable_key_clamps_the_callers_cap_to_the_pools(
    operator: Operator, compat_pool: Callable[[str], None]
) -> None:
    # Prepare: the pool's cap is 1, below the caller's 3; its only key has been used twice
    pool, [secret] = operator.pool(keys=1, maxUses=1)
    compat_pool(pool)
    operator.set_count(pool, key_id_for(secret), 2)
    # Act
    above_the_pool_cap = StabilityApiKey.find_usable_key(max_uses=3)
    operator.set_count(pool, key_id_for(secret), 1)
    within_it = StabilityApiKey.find_usable_key(max_uses=3)
    # Assess: not an error for asking 3, and never a key past the pool's cap
    assert above_the_pool_cap is None
    assert within_it is not None and within_it.usage_count == 1
    within_it.failed()


def test_find_usable_key_keeps_a_cap_lower_than_the_pools(
    operator: Operator, compat_pool: Callable[[str], None]
) -> None:
    # Prepare
    pool, [secret] = operator.pool(keys=1, maxUses=3)
    compat_pool(pool)
    operator.set_count(pool, key_id_for(secret), 1)
    # Act / Assess
    assert StabilityApiKey.find_usable_key(max_uses=0) is None
    assert operator.keys(pool)[key_id_for(secret)]["usageCount"] == 1


def test_the_compat_calls_say_what_to_set_when_keypool_url_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.delenv("KEYPOOL_URL", raising=False)
    # Act / Assess
    with pytest.raises(RuntimeError, match="set KEYPOOL_URL"):
        StabilityApiKey.find_usable_key(max_uses=3)
    with pytest.raises(RuntimeError, match="set KEYPOOL_URL"):
        StabilityApiKey.increment_usage("sk-test-0123456789abcdef")
