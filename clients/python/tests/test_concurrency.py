"""Twenty threads on five keys with cap 3 (four uses each): exactly twenty uses, none past the cap."""

from __future__ import annotations

import gc
import os
import threading
from collections import Counter
from typing import Callable, List, Optional, Tuple

import pytest
from conftest import Operator

from keypool_client import Keypool, NoUsableKey
from keypool_client.compat import StabilityApiKey

THREADS = 20


def all_at_once(work: Callable[[], Tuple[str, int]]) -> List[Optional[Tuple[str, int]]]:
    """Runs `work` on THREADS threads released together; each result, or None for NoUsableKey."""
    start = threading.Barrier(THREADS)
    results: List[Optional[Tuple[str, int]]] = [None] * THREADS
    errors: List[BaseException] = []

    def run(slot: int) -> None:
        start.wait()
        try:
            results[slot] = work()
        except NoUsableKey:
            results[slot] = None
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def assert_twenty_uses_within_the_cap(operator: Operator, pool: str, results: List[Optional[Tuple[str, int]]]) -> None:
    granted = [result for result in results if result is not None]
    per_key = Counter(key_id for key_id, _ in granted)
    counts = {key_id: key["usageCount"] for key_id, key in operator.keys(pool).items()}
    # Every thread got a use; each key served its four (counts 0..3 seen), and no more.
    assert len(granted) == THREADS
    assert all(count <= 3 for _, count in granted)
    assert sorted(per_key.values()) == [4] * 5
    assert sorted(counts.values()) == [4] * 5 and sum(counts.values()) == THREADS


def test_twenty_threads_with_lease_blocks_use_each_key_exactly_to_its_cap(api_url: str, operator: Operator) -> None:
    # Prepare
    pool, _ = operator.pool(keys=5, maxUses=3)
    lease_pool = Keypool(api_url).pool(pool)

    def work() -> Tuple[str, int]:
        with lease_pool.lease() as key:
            return key.key_id, key.usage_count

    # Act
    results = all_at_once(work)
    # Assess
    assert_twenty_uses_within_the_cap(operator, pool, results)
    with pytest.raises(NoUsableKey):
        lease_pool.lease()


def test_twenty_threads_through_the_old_calls_count_twenty_uses(
    api_url: str, operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    pool, _ = operator.pool(keys=5, maxUses=3)
    monkeypatch.setenv("KEYPOOL_URL", api_url)
    monkeypatch.setenv("KEYPOOL_POOL", pool)

    def work() -> Tuple[str, int]:
        key = StabilityApiKey.find_usable_key(max_uses=3)
        if key is None:
            raise NoUsableKey("none")
        StabilityApiKey.increment_usage(key.api_key)
        return key.key_id, key.usage_count

    # Act
    results = all_at_once(work)
    # Assess
    assert_twenty_uses_within_the_cap(operator, pool, results)
    assert StabilityApiKey.find_usable_key(max_uses=3) is None


def _open_sockets() -> int:
    """How many sockets this process holds open (Linux: /proc/self/fd)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return count


def test_threads_that_come_and_go_leave_no_connection_open(api_url: str, operator: Operator) -> None:
    # Prepare: one client shared by short-lived threads (a thread per request, as many servers run)
    name, _ = operator.pool(keys=1)
    pool = Keypool(api_url).pool(name)
    pool.lease().failed()
    before = _open_sockets()
    # Act
    for _ in range(30):
        thread = threading.Thread(target=lambda: pool.lease().failed())
        thread.start()
        thread.join(30)
    gc.collect()
    # Assess: a dead thread's session and its keep-alive connection went with it
    assert _open_sockets() - before <= 2
