"""`python -m keypool_client --list` and `--find --max-uses=3` against the real local stack."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import List

from conftest import Operator

from keypool_client import Keypool, key_id_for


def run_cli(api_url: str, pool: str, *args: str) -> "subprocess.CompletedProcess[str]":
    env = dict(os.environ, KEYPOOL_URL=api_url, KEYPOOL_POOL=pool)
    return subprocess.run(
        [sys.executable, "-m", "keypool_client", *args], env=env, capture_output=True, text=True, timeout=60
    )


def used(api_url: str, pool: str, times: int) -> None:
    lease_pool = Keypool(api_url).pool(pool)
    for _ in range(times):
        lease_pool.lease().succeeded()


def no_secret_in(output: str, secrets_: List[str]) -> bool:
    return not any(secret in output for secret in secrets_)


def test_list_prints_one_line_per_key_with_its_mask_count_status_and_last_use(api_url: str, operator: Operator) -> None:
    # Prepare: three keys, used 1, 1 and 0 times; one of them disabled by the operator
    pool, secrets_ = operator.pool(keys=3, maxUses=3)
    used(api_url, pool, 2)
    keys = operator.keys(pool)
    disabled = key_id_for(secrets_[2])
    operator.disable(pool, disabled)
    # Act
    run = run_cli(api_url, pool, "--list")
    # Assess
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    expected = sorted(
        f"{key['maskedKey']}  usage_count={key['usageCount']}  "
        f"status={'disabled' if key_id == disabled else key['status']}  last_used={key['lastUsedAt'] or 'never'}"
        for key_id, key in keys.items()
    )
    assert sorted(lines) == expected
    assert no_secret_in(run.stdout + run.stderr, secrets_)


def test_find_shows_the_key_the_next_lease_takes_without_taking_a_use(api_url: str, operator: Operator) -> None:
    # Prepare: keys used 1, 1 and 0 times: the unused one is next
    pool, secrets_ = operator.pool(keys=3, maxUses=3)
    used(api_url, pool, 2)
    before = {key_id: key["usageCount"] for key_id, key in operator.keys(pool).items()}
    # Act
    found = run_cli(api_url, pool, "--find", "--max-uses=3")
    after = {key_id: key["usageCount"] for key_id, key in operator.keys(pool).items()}
    leased = operator.lease_raw(pool)
    # Assess
    assert found.returncode == 0, found.stderr
    key_id, masked, count = found.stdout.split()
    assert (key_id, count) == (leased["keyId"], f"usage_count={leased['usageCount']}")
    assert masked == operator.keys(pool)[key_id]["maskedKey"]
    assert before == after
    assert no_secret_in(found.stdout + found.stderr, secrets_)


def test_find_takes_the_lower_of_max_uses_and_the_pools_cap(api_url: str, operator: Operator) -> None:
    # Prepare: cap 2; one key at 3 (past it), one at 1
    pool, secrets_ = operator.pool(keys=2, maxUses=2)
    operator.set_count(pool, key_id_for(secrets_[0]), 3)
    operator.set_count(pool, key_id_for(secrets_[1]), 1)
    # Act
    within_pool_cap = run_cli(api_url, pool, "--find", "--max-uses=3")
    below_every_key = run_cli(api_url, pool, "--find", "--max-uses=0")
    # Assess
    assert within_pool_cap.stdout.split()[0] == key_id_for(secrets_[1])
    assert below_every_key.returncode == 1
    assert below_every_key.stderr.strip() == f"keypool: pool {pool} has no usable key with usage_count <= 0"
    assert no_secret_in(within_pool_cap.stdout + below_every_key.stdout, secrets_)


def test_the_cli_says_what_to_set_without_keypool_url() -> None:
    # Prepare
    env = {k: v for k, v in os.environ.items() if k != "KEYPOOL_URL"}
    # Act
    run = subprocess.run([sys.executable, "-m", "keypool_client", "--list"], env=env, capture_output=True, text=True)
    # Assess
    assert run.returncode == 2
    assert "set KEYPOOL_URL" in run.stderr
