"""
SigV4, checked by a verifier written here from the specification (AWS General Reference,
"Create a signed AWS API request"), not by botocore: a recording server on loopback captures
what the client sends, and the test re-derives the signature from the fake credentials it gave.
The local stack checks no signature, so this is where the signature's form is proven.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from typing import Dict, List, Tuple
from urllib.parse import quote, unquote, urlsplit

import pytest
from botocore.credentials import Credentials
from conftest import Recorded, RecordingServer, lease_answer

from keypool_client import AccessDenied, Keypool, KeypoolApiError, NoUsableKey

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _canonical_uri(path: str) -> str:
    # Every service but S3: each segment URI-encoded twice (the raw segment, decoded here from
    # the request line, encoded once for the wire and once more for the signature).
    return "/".join(_encode(_encode(unquote(segment))) for segment in path.split("/")) or "/"


def _canonical_query(query: str) -> str:
    pairs: List[Tuple[str, str]] = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append((_encode(unquote(name)), _encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sigv4_check(request: Recorded, secret: str) -> Dict[str, str]:
    """
    Re-derives the request's signature with `secret`. Returns the Authorization header's parts
    and `expected`, the signature the specification gives for this request.
    """
    headers = {name.lower(): value for name, value in request.headers.items()}
    algorithm, _, fields = headers["authorization"].partition(" ")
    parts = dict(field.strip().split("=", 1) for field in fields.split(","))
    _, date, region, service, terminator = parts["Credential"].split("/")
    signed = parts["SignedHeaders"].split(";")
    amz_date = headers["x-amz-date"]
    target = urlsplit(request.path)
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)
    canonical_request = "\n".join(
        [
            request.method,
            _canonical_uri(target.path),
            _canonical_query(target.query),
            canonical_headers,
            parts["SignedHeaders"],
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode("utf-8"), date), region), service), "aws4_request")
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return {
        "algorithm": algorithm,
        "access_key": parts["Credential"].split("/")[0],
        "date": date,
        "amz_date": amz_date,
        "region": region,
        "service": service,
        "terminator": terminator,
        "signed_headers": parts["SignedHeaders"],
        "signature": parts["Signature"],
        "expected": expected,
    }


def test_a_signed_lease_verifies_with_the_given_credentials_and_with_no_other_secret(recorder: RecordingServer) -> None:
    # Prepare
    recorder.script = [(200, {}, lease_answer("images"))]
    client = Keypool(recorder.url, "eu-west-1", credentials=Credentials(ACCESS_KEY, SECRET, "session-token"))
    # Act
    client.pool("images").lease(max_uses=2)
    # Assess
    [request] = recorder.requests
    check = sigv4_check(request, SECRET)
    other = sigv4_check(request, SECRET[:-1] + "X")
    now = datetime.now(timezone.utc)
    assert check["signature"] == check["expected"]
    assert other["signature"] != other["expected"]
    assert (check["algorithm"], check["access_key"], check["region"], check["service"], check["terminator"]) == (
        "AWS4-HMAC-SHA256",
        ACCESS_KEY,
        "eu-west-1",
        "execute-api",
        "aws4_request",
    )
    assert check["date"] == check["amz_date"][:8] == now.strftime("%Y%m%d")
    assert set(check["signed_headers"].split(";")) >= {
        "host",
        "x-amz-date",
        "x-amz-security-token",
        "content-type",
        "idempotency-key",
    }
    assert request.headers["X-Amz-Security-Token"] == "session-token"


def test_a_changed_body_path_or_header_no_longer_verifies(recorder: RecordingServer) -> None:
    # Prepare
    recorder.script = [(200, {}, lease_answer("images"))]
    Keypool(recorder.url, "eu-west-1", credentials=Credentials(ACCESS_KEY, SECRET)).pool("images").lease(max_uses=2)
    [request] = recorder.requests
    changed_headers = dict(request.headers, **{"Idempotency-Key": "another"})
    # Act
    variants = [
        Recorded(request.method, request.path, request.headers, request.body.replace(b"2", b"3")),
        Recorded(request.method, request.path.replace("images", "videos"), request.headers, request.body),
        Recorded(request.method, request.path, changed_headers, request.body),
    ]
    # Assess
    assert sigv4_check(request, SECRET)["signature"] == sigv4_check(request, SECRET)["expected"]
    for variant in variants:
        check = sigv4_check(variant, SECRET)
        assert check["signature"] != check["expected"]


def test_a_proxied_multipart_call_with_a_query_signs_for_the_proxy_service(recorder: RecordingServer) -> None:
    # Prepare: proxy mode served by a function URL elsewhere (SigV4 service `lambda`)
    recorder.script = [(200, {"x-keypool-outcome": "success"}, b"\x89PNG image bytes")]
    client = Keypool(
        "http://127.0.0.1:9",
        "eu-west-1",
        credentials=Credentials(ACCESS_KEY, SECRET),
        proxy_url=recorder.url,
        proxy_service="lambda",
    )
    # Act
    answer = client.pool("images").proxy(
        "v2beta/stable-image/generate/odd name",
        files={"image": ("in.png", b"\x89PNG\r\n\x1a\n fake")},
        data={"prompt": "a lighthouse, dusk"},
        params={"seed": "42", "mode": "a b"},
        headers={"accept": "image/*"},
    )
    # Assess
    [request] = recorder.requests
    check = sigv4_check(request, SECRET)
    assert answer.status_code == 200 and answer.content == b"\x89PNG image bytes"
    assert request.path == "/pools/images/proxy/v2beta/stable-image/generate/odd%20name?seed=42&mode=a%20b"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="prompt"\r\n\r\na lighthouse, dusk' in request.body
    assert check["service"] == "lambda" and check["signature"] == check["expected"]
    assert {"accept", "content-type", "idempotency-key"} <= set(check["signed_headers"].split(";"))


def test_keypools_own_refusal_through_the_proxy_is_raised_and_a_providers_answer_returned(
    recorder: RecordingServer,
) -> None:
    # Prepare
    provider_refusal = {"id": "abc", "name": "content_moderation", "errors": ["refused"]}
    recorder.script = [
        (409, {"retry-after": "12"}, {"error": "no_usable_key", "message": "no key", "retryAfterSeconds": 12}),
        (403, {"x-keypool-outcome": "failure"}, provider_refusal),
    ]
    pool = Keypool(recorder.url).pool("images")
    # Act
    with pytest.raises(NoUsableKey) as dry:
        pool.proxy("v2beta/stable-image/generate/core", data={"prompt": "x"})
    passed_on = pool.proxy("v2beta/stable-image/generate/core", data={"prompt": "x"})
    # Assess
    assert dry.value.retry_after == 12
    assert passed_on.status_code == 403 and passed_on.json() == provider_refusal


def test_the_gateways_own_answer_through_the_proxy_is_raised_never_passed_off_as_the_providers(
    recorder: RecordingServer,
) -> None:
    # Prepare: API Gateway answers before keypool runs (IAM's 403, its throttling's 429): a
    # message only, none of keypool's headers, where every provider answer carries x-keypool-outcome
    recorder.script = [(403, {}, {"message": "Forbidden"}), (429, {}, {"message": "Too Many Requests"})]
    pool = Keypool(recorder.url).pool("images")
    # Act
    with pytest.raises(AccessDenied) as denied:
        pool.proxy("v2beta/stable-image/generate/core", data={"prompt": "x"})
    with pytest.raises(KeypoolApiError) as throttled:
        pool.proxy("v2beta/stable-image/generate/core", data={"prompt": "x"})
    # Assess
    assert denied.value.status == 403 and "Forbidden" in str(denied.value)
    assert throttled.value.status == 429 and str(throttled.value) == "Too Many Requests"
    assert len(recorder.requests) == 2


def test_credentials_from_the_environment_sign_for_its_region(
    recorder: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    recorder.script = [(200, {}, lease_answer("images"))]
    client = Keypool(recorder.url)
    # Act
    client.pool("images").lease()
    # Assess
    check = sigv4_check(recorder.requests[0], SECRET)
    assert client.signs and check["region"] == "eu-central-1" and check["signature"] == check["expected"]


def test_without_credentials_a_request_goes_unsigned_and_a_403_says_so(recorder: RecordingServer) -> None:
    # Prepare: the harness leaves no credentials anywhere the chain looks
    recorder.script = [(200, {}, lease_answer("images")), (403, {}, {"message": "Missing Authentication Token"})]
    client = Keypool(recorder.url)
    # Act
    client.pool("images").lease()
    with pytest.raises(AccessDenied) as denied:
        client.pool("images").lease()
    # Assess
    sent = {name.lower() for name in recorder.requests[0].headers}
    assert not client.signs
    assert not sent & {"authorization", "x-amz-date", "x-amz-security-token"}
    assert "Missing Authentication Token" in str(denied.value) and "unsigned" in str(denied.value)
