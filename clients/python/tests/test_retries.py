"""
Retries and waits. Against the real local stack: a pool whose only key is cooling answers 409
with Retry-After, and a lease waits for it within its bound. Against a recording server on
loopback (the local stack cannot be made to fail on demand): a lease repeats its own
Idempotency-Key on a lost connection, a 5xx or a short Retry-After, and nothing that counts a
use is repeated once it may have arrived.
"""

from __future__ import annotations

import io
import socket
import time
from typing import List

import pytest
from conftest import Operator, RecordingServer, lease_answer

from keypool_client import (
    KeypoolApiError,
    KeypoolUnavailable,
    Keypool,
    NoUsableKey,
    SealingUnavailable,
    StoreThrottled,
    _http,
)


@pytest.fixture()
def sleeps(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    """Every wait the client makes, really slept (the local stack's cooldowns are real time)."""
    waited: List[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(_http, "_sleep", sleep)
    return waited


def test_a_lease_waits_for_a_cooling_key_within_its_bound(
    api_url: str, operator: Operator, sleeps: List[float]
) -> None:
    # Prepare: the only key is cooling for 2 s
    pool, [secret] = operator.pool(keys=1)
    lease_pool = Keypool(api_url).pool(pool)
    with lease_pool.lease() as key:
        key.rate_limited(retry_after=2)
    # Act
    with pytest.raises(NoUsableKey) as dry:
        lease_pool.lease()
    started = time.monotonic()
    with lease_pool.lease(max_wait_seconds=10) as waited:
        leased = waited.api_key
    elapsed = time.monotonic() - started
    # Assess: the 409 said when the key comes back; the lease slept that long once, then got it
    assert dry.value.retry_after in (1, 2)
    assert leased == secret
    assert len(sleeps) == 1 and 1 <= sleeps[0] <= 2.2
    assert elapsed >= 1


def test_a_cooldown_past_the_bound_is_raised_at_once(api_url: str, operator: Operator, sleeps: List[float]) -> None:
    # Prepare
    pool, _ = operator.pool(keys=1)
    lease_pool = Keypool(api_url, max_wait_seconds=5).pool(pool)
    with lease_pool.lease() as key:
        key.rate_limited(retry_after=60)
    # Act
    with pytest.raises(NoUsableKey) as dry:
        lease_pool.lease()
    # Assess
    assert dry.value.retry_after is not None and dry.value.retry_after > 5
    assert sleeps == []


def test_a_lease_repeats_its_idempotency_key_after_a_lost_connection_and_a_503(
    recorder: RecordingServer, sleeps: List[float]
) -> None:
    # Prepare
    recorder.script = [
        "drop",
        (503, {"retry-after": "1"}, {"error": "sealing_unavailable", "message": "KMS failed", "retryAfterSeconds": 1}),
        (200, {}, lease_answer("p")),
    ]
    # Act
    key = Keypool(recorder.url, retries=2).pool("p").lease()
    # Assess
    sent = [r.headers.get("Idempotency-Key") for r in recorder.requests]
    assert key.key_id == "k_0123456789abcdef01234567"
    assert len(sent) == 3 and sent[0] and len(set(sent)) == 1
    assert sleeps[1] == 1


def test_each_lease_sends_a_key_of_its_own(recorder: RecordingServer) -> None:
    # Prepare
    recorder.script = [(200, {}, lease_answer("p")), (200, {}, lease_answer("p"))]
    pool = Keypool(recorder.url).pool("p")
    # Act
    pool.lease()
    pool.lease()
    # Assess
    first, second = (r.headers.get("Idempotency-Key") for r in recorder.requests)
    assert first and second and first != second


def test_a_retry_after_past_the_limit_is_raised_not_waited(recorder: RecordingServer, sleeps: List[float]) -> None:
    # Prepare
    recorder.script = [
        (503, {"retry-after": "30"}, {"error": "sealing_unavailable", "message": "KMS failed", "retryAfterSeconds": 30})
    ]
    # Act
    with pytest.raises(SealingUnavailable) as refused:
        Keypool(recorder.url).pool("p").lease()
    # Assess
    assert refused.value.retry_after == 30
    assert len(recorder.requests) == 1 and sleeps == []


def test_a_throttled_request_is_retried_after_its_retry_after(recorder: RecordingServer, sleeps: List[float]) -> None:
    # Prepare: API Gateway's throttling answer, not keypool's shape
    recorder.script = [(429, {"retry-after": "1"}, {"message": "Too Many Requests"}), (200, {}, lease_answer("p"))]
    # Act
    Keypool(recorder.url).pool("p").lease()
    # Assess
    assert len(recorder.requests) == 2 and sleeps == [1]


def test_a_count_without_a_lease_is_never_repeated_once_it_may_have_arrived(
    recorder: RecordingServer, sleeps: List[float]
) -> None:
    # Prepare
    recorder.script = ["drop", (500, {}, {"error": "internal_error", "message": "internal error"})]
    pool = Keypool(recorder.url, retries=3).pool("p")
    # Act / Assess: a lost answer and a 500 may both have counted; neither is sent again
    with pytest.raises(KeypoolUnavailable):
        pool.increment("k_0123456789abcdef01234567")
    with pytest.raises(KeypoolApiError) as failed:
        pool.increment("k_0123456789abcdef01234567")
    assert failed.value.code == "internal_error" and failed.value.status == 500
    assert len(recorder.requests) == 2 and sleeps == []


def test_a_completion_is_repeated_after_a_5xx_with_the_same_report(
    recorder: RecordingServer, sleeps: List[float]
) -> None:
    # Prepare
    recorder.script = [
        (200, {}, lease_answer("p")),
        (502, {}, {"message": "Internal server error"}),
        (200, {}, {"keyId": "k_0123456789abcdef01234567", "usageCount": 0, "status": "cooling"}),
    ]
    key = Keypool(recorder.url).pool("p").lease()
    # Act
    completion = key.rate_limited(retry_after=7.2)
    # Assess
    first, again = recorder.requests[1:]
    assert completion is not None and completion.status == "cooling"
    assert first.path == again.path == f"/pools/p/leases/{key.lease_id}/complete"
    assert first.body == again.body == b'{"outcome":"rate_limited","retryAfterSeconds":8}'
    assert len(sleeps) == 1


def test_a_redirect_is_never_followed(recorder: RecordingServer) -> None:
    # Prepare
    recorder.script = [(307, {"location": "http://127.0.0.1:9/elsewhere"}, b"")]
    # Act
    with pytest.raises(KeypoolApiError) as refused:
        Keypool(recorder.url).pool("p").lease()
    # Assess
    assert refused.value.code == "redirect" and len(recorder.requests) == 1


def test_a_busy_table_is_waited_out_then_raised_as_store_throttled(
    recorder: RecordingServer, sleeps: List[float]
) -> None:
    # Prepare: keypool's table stays too busy past its own retries and ours
    busy = (503, {"retry-after": "1"}, {"error": "store_throttled", "message": "busy", "retryAfterSeconds": 1})
    recorder.script = [busy, busy, busy]
    # Act
    with pytest.raises(StoreThrottled) as refused:
        Keypool(recorder.url, retries=2).pool("p").lease()
    # Assess: the same Idempotency-Key each time, Retry-After waited, never a NoUsableKey
    keys = {h.get("idempotency-key") for h in ({k.lower(): v for k, v in r.headers.items()} for r in recorder.requests)}
    assert refused.value.code == "store_throttled" and refused.value.retry_after == 1
    assert len(recorder.requests) == 3 and len(keys) == 1 and sleeps == [1, 1]


def test_a_proxied_call_waits_for_a_generation_longer_than_the_clients_request_timeout(
    recorder: RecordingServer,
) -> None:
    # Prepare: keypool answers a proxied call once the provider has (a generation takes seconds);
    # the client's per-request timeout is set short for its quick calls
    recorder.script = [("slow", 1.5, (200, {"x-keypool-outcome": "success"}, b"an image"))]
    pool = Keypool(recorder.url, timeout=0.5).pool("p")
    # Act
    answer = pool.proxy("v2beta/stable-image/generate/core", data={"prompt": "x"})
    # Assess: the answer came back (as with the TypeScript client's default), it was asked once
    assert answer.status_code == 200 and answer.content == b"an image"
    assert len(recorder.requests) == 1


def test_a_proxied_call_waits_by_default_as_long_as_keypool_may_take_to_answer(
    recorder: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: the wait each proxied request is sent with
    waits: List[float] = []
    real = _http.Transport.send_prepared

    def recording(self: _http.Transport, prepared: object, **kwargs: object) -> object:
        waits.append(float(kwargs["timeout"]))  # type: ignore[arg-type]
        return real(self, prepared, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_http.Transport, "send_prepared", recording)
    recorder.script = [(200, {"x-keypool-outcome": "success"}, b"an image")]
    # Act
    Keypool(recorder.url).pool("p").proxy("v2beta/stable-image/generate/core", data={"prompt": "x"})
    # Assess: the pool's default proxyTimeoutSeconds (120 s) and keypool's 30 s margin
    assert waits == [150.0]


def test_a_proxied_file_goes_whole_again_when_the_first_connection_was_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: nothing listens on keypool's port at first; it comes up during the client's backoff
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    started: List[RecordingServer] = []
    monkeypatch.setattr(_http, "_sleep", lambda _seconds: started or started.append(RecordingServer(port).__enter__()))
    image = io.BytesIO(b"the-image-to-upscale")
    # Act
    try:
        answer = (
            Keypool(f"http://127.0.0.1:{port}")
            .pool("p")
            .proxy("v2beta/stable-image/upscale/fast", files={"image": ("in.png", image)}, data={"prompt": "x"})
        )
    finally:
        for server in started:
            server.__exit__()
    # Assess: the one request that arrived carries the file, not the empty read left after the first try
    assert answer.status_code == 200 and len(started) == 1 and len(started[0].requests) == 1
    assert b"the-image-to-upscale" in started[0].requests[0].body


def test_a_completion_says_when_keypool_ignored_the_report_over_the_callers_budget(recorder: RecordingServer) -> None:
    # Prepare: the caller is past the pool's maxClientReportsPerMinute
    recorder.script = [
        (200, {}, lease_answer("p")),
        (200, {}, {"keyId": "k_0123456789abcdef01234567", "usageCount": 0, "status": "active", "reportIgnored": "over_budget"}),
    ]
    key = Keypool(recorder.url).pool("p").lease()
    # Act
    completion = key.invalid()
    # Assess: the use was given back, the key kept its status, and the caller can tell (as in TypeScript)
    assert completion is not None and completion.status == "active"
    assert completion.report_ignored == "over_budget"


def test_a_retry_after_of_digits_outside_ascii_is_no_wait_not_a_crash(recorder: RecordingServer, sleeps: List[float]) -> None:
    # Prepare: headers arrive as Latin-1, where the bytes B2, B3 and B9 read as superscript digits
    recorder.script = [
        (503, {"retry-after": "\u00b2"}, {"message": "Service Unavailable"}),
        (200, {}, lease_answer("p")),
        (200, {}, {"keyId": "k_0123456789abcdef01234567", "usageCount": 0, "status": "cooling"}),
    ]
    # Act
    key = Keypool(recorder.url).pool("p").lease()
    completion = key.rate_limited("\u00b2")
    # Assess: the 503 was retried after a backoff, and the report leaves the pool's cooldown
    assert completion is not None and len(sleeps) == 1 and sleeps[0] < 1
    assert recorder.requests[2].body == b'{"outcome":"rate_limited"}'


def test_no_exception_holds_a_secret_that_an_answer_in_between_echoes(recorder: RecordingServer) -> None:
    # Prepare: a gateway between the client and keypool echoes a secret in its message and code
    secret = "sk-live-0123456789abcdefABCDEF"
    recorder.script = [(502, {}, {"error": f"bad_gateway {secret}", "message": f"upstream said: Bearer {secret}"})]
    # Act
    with pytest.raises(KeypoolApiError) as failed:
        Keypool(recorder.url).pool("p").increment("k_0123456789abcdef01234567")
    # Assess: as in the TypeScript client, a secret-shaped run is masked
    shown = f"{failed.value} {failed.value!r} {failed.value.message} {failed.value.code}"
    assert secret[3:] not in shown and "upstream said: Bearer sk-..." in shown
