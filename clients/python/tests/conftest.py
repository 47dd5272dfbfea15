"""
The harness: a running keypool at KEYPOOL_URL (`npm start`; `npm test` starts one), an
operator's helper that sets up pools through the API, and a loopback server that records what
the client sends. Every test isolates itself with a pool of its own; traffic stays on loopback.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import socket
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests

# Anything that would make a request leave this machine (a proxy, instance metadata) or sign
# with someone's real credentials is cleared; tests that want credentials give them.
_AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_credentials_and_loopback_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in _AWS_VARIABLES + _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "*")


def fake_key() -> str:
    """A fake secret in the fixture format; never a real key."""
    return f"sk-test-{secrets.token_hex(16)}"


def unique_pool(prefix: str = "py") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


class Operator:
    """The operator's side, straight over the local stack's HTTP API (unsigned: it checks none)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.trust_env = False

    def _send(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        response = self.http.request(method, f"{self.url}{path}", json=body, timeout=10)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def pool(self, keys: int = 1, **policy: Any) -> Tuple[str, List[str]]:
        """A new pool with `keys` fresh fake keys and the given policy (maxUses=..., ...)."""
        name = unique_pool()
        self._send("PUT", f"/pools/{name}", policy)
        secrets_ = [fake_key() for _ in range(keys)]
        if secrets_:
            self._send("POST", f"/pools/{name}/keys", {"keys": [{"apiKey": s} for s in secrets_]})
        return name, secrets_

    def import_keys(self, pool: str, secrets_: List[str]) -> List[Dict[str, Any]]:
        return list(self._send("POST", f"/pools/{pool}/keys", {"keys": [{"apiKey": s} for s in secrets_]})["keys"])

    def keys(self, pool: str) -> Dict[str, Dict[str, Any]]:
        """Every key of the pool by id, as the API lists it."""
        return {key["keyId"]: key for key in self._send("GET", f"/pools/{pool}/keys?limit=1000")["keys"]}

    def set_count(self, pool: str, key_id: str, count: int) -> None:
        self._send("PATCH", f"/pools/{pool}/keys/{key_id}", {"usageCount": count})

    def disable(self, pool: str, key_id: str) -> None:
        self._send("PATCH", f"/pools/{pool}/keys/{key_id}", {"status": "disabled"})

    def lease_raw(self, pool: str) -> Dict[str, Any]:
        return dict(self._send("POST", f"/pools/{pool}/leases", {}))

    def complete_raw(self, pool: str, lease_id: str, body: Dict[str, Any]) -> Dict[str, Any]:
        return dict(self._send("POST", f"/pools/{pool}/leases/{lease_id}/complete", body))


@pytest.fixture(scope="session")
def api_url() -> str:
    url = os.environ.get("KEYPOOL_URL", "").strip()
    if not url:
        pytest.fail("KEYPOOL_URL is not set: start keypool (npm start) and point KEYPOOL_URL at it", pytrace=False)
    return url


@pytest.fixture()
def operator(api_url: str) -> Operator:
    return Operator(api_url)


class Recorded:
    """One request as the recording server received it."""

    def __init__(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


class RecordingServer:
    """
    A loopback HTTP server that answers from a script and records every request. A script
    entry is (status, headers, body), "drop" (read the request, close without answering) or
    ("slow", seconds, entry) (that entry, after holding the answer back so long).
    """

    def __init__(self, port: int = 0) -> None:
        self.requests: List[Recorded] = []
        self.script: List[Any] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                # Header names as sent (case kept) and values as received.
                headers = {name: value for name, value in self.headers.items()}
                recorder.requests.append(Recorded(self.command, self.path, headers, body))
                entry = recorder.script.pop(0) if recorder.script else (200, {}, {})
                if isinstance(entry, tuple) and entry[0] == "slow":
                    time.sleep(entry[1])
                    entry = entry[2]
                if entry == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, extra, payload = entry
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "RecordingServer":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def recorder() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


def lease_answer(pool: str = "p", api_key: Optional[str] = None) -> Dict[str, Any]:
    """A lease body as keypool answers it, for the recording server."""
    key = api_key or fake_key()
    return {
        "leaseId": "k_0123456789abcdef01234567.0.abc.0123456789abcdef",
        "keyId": "k_0123456789abcdef01234567",
        "apiKey": key,
        "pool": pool,
        "usageCount": 0,
        "expiresAt": "2999-01-01T00:00:00.000Z",
    }
