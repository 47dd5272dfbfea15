"""One signed HTTP request to keypool, and the retry rules around it.

A request is signed with SigV4 (botocore's signer) whenever AWS credentials are available,
from the caller or botocore's default chain (environment, profile, SSO, container, instance
metadata), and goes unsigned only when there are none: the local stack (`npm start`) checks
no signature. Redirects are never followed: a signed request, or an answer holding a secret,
must not travel anywhere keypool did not send it.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional
from urllib.parse import urlsplit

import botocore.session
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from urllib3.exceptions import ConnectTimeoutError

from .errors import KeypoolApiError, KeypoolUnavailable, retry_after_of

#: A Retry-After on a 429 or 503 is waited only up to this many seconds; a longer one is raised.
RETRY_AFTER_LIMIT_SECONDS = 10
#: The first backoff before a retry without Retry-After, seconds (doubles each retry, jittered).
BACKOFF_SECONDS = 0.25

# Indirections the tests replace to see the waits without sleeping.
_sleep: Callable[[float], None] = time.sleep
_random: Callable[[], float] = random.random

_LOOPBACK = re.compile(r"^(localhost|127(\.\d{1,3}){3}|::1)$")
_EXECUTE_API = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
_LAMBDA_URL = re.compile(r"\.lambda-url\.([a-z0-9-]+)\.on\.aws$")
# The local stack checks no signature, but a signature needs a region to be made at all.
_LOOPBACK_REGION = "us-east-1"


def is_loopback(url: str) -> bool:
    """True for http(s)://localhost, 127.0.0.0/8 and [::1]."""
    return bool(_LOOPBACK.match(urlsplit(url).hostname or ""))


def service_for(url: str) -> str:
    """The SigV4 service a URL signs for: `lambda` for a function URL, else `execute-api`."""
    return "lambda" if _LAMBDA_URL.search(urlsplit(url).hostname or "") else "execute-api"


def region_for(url: str, given: Optional[str]) -> Optional[str]:
    """The region: given, else the URL's (execute-api, function URL), else AWS_REGION / the profile's."""
    host = urlsplit(url).hostname or ""
    from_url = _EXECUTE_API.search(host) or _LAMBDA_URL.search(host)
    if given:
        return given
    if from_url:
        return from_url.group(1)
    # botocore reads AWS_DEFAULT_REGION and the profile; AWS_REGION is the name the SDKs share.
    return os.environ.get("AWS_REGION") or botocore.session.get_session().get_config_variable("region") or None


def never_sent(error: BaseException) -> bool:
    """True when the request cannot have reached the server: the connection was never made."""
    seen: List[BaseException] = []
    current: Optional[BaseException] = error
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        if isinstance(current, (requests.exceptions.ConnectTimeout, ConnectTimeoutError)):
            return True
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = reason if isinstance(reason, BaseException) else nested or current.__context__
    return False


class Answer:
    """An answer with its body read as JSON (None when it is not JSON)."""

    def __init__(self, response: requests.Response) -> None:
        self.status = response.status_code
        self.headers = response.headers
        try:
            self.body: Any = response.json()
        except ValueError:
            self.body = None


class Transport:
    """Requests to one base URL, signed for one SigV4 service, one `requests.Session` per thread."""

    def __init__(
        self,
        base_url: str,
        *,
        region: Optional[str],
        credentials: Optional[Credentials],
        service: Optional[str] = None,
        timeout: float = 10.0,
    ) -> None:
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError("keypool: the URL is http(s)://host[:port][/prefix]")
        self.base_url = base_url.rstrip("/")
        self.service = service or service_for(base_url)
        self.timeout = timeout
        self._region = region_for(base_url, region)
        self._given_credentials = credentials
        self._resolved = credentials is not None
        self._credentials = credentials
        self._lock = threading.Lock()
        self._local = threading.local()
        # Weak: a session goes, its connections closed, with the thread that made it; close()
        # still reaches every one that lives.
        self._sessions: "weakref.WeakSet[requests.Session]" = weakref.WeakSet()

    @property
    def signs(self) -> bool:
        """Whether requests are signed (credentials were found)."""
        return self._credentials_or_none() is not None

    def _credentials_or_none(self) -> Optional[Credentials]:
        # The chain is resolved once, on first use; refreshable credentials refresh themselves.
        if not self._resolved:
            with self._lock:
                if not self._resolved:
                    self._credentials = botocore.session.get_session().get_credentials()
                    self._resolved = True
        return self._credentials

    def _session(self) -> requests.Session:
        session: Optional[requests.Session] = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
            with self._lock:
                self._sessions.add(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in list(self._sessions):
                session.close()
            self._sessions.clear()
        self._local = threading.local()

    def _sign(self, prepared: requests.PreparedRequest, signed_names: Iterable[str]) -> None:
        credentials = self._credentials_or_none()
        if credentials is None:
            return
        region = self._region
        if region is None:
            if not is_loopback(self.base_url):
                raise ValueError("keypool: SigV4 needs a region: pass region= or set AWS_REGION")
            region = _LOOPBACK_REGION
        names = {name.lower() for name in signed_names} | {"content-type"}
        # Only these headers are signed (host and x-amz-* are added by the signer): the ones
        # requests adds itself (connection, accept-encoding) may be changed on the way.
        headers = {k: v for k, v in prepared.headers.items() if k.lower() in names}
        body = prepared.body
        if body is not None and not isinstance(body, (bytes, str)) and not hasattr(body, "seek"):
            raise TypeError("keypool: a signed body is bytes, str or a seekable file")
        aws_request = AWSRequest(method=prepared.method, url=prepared.url, data=body or b"", headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), self.service, region).add_auth(aws_request)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            value = aws_request.headers.get(name)
            if value is not None:
                prepared.headers[name] = value

    def prepare(
        self,
        method: str,
        path: str,
        *,
        json_body: Optional[bytes] = None,
        headers: Optional[Dict[str, str]] = None,
        query: str = "",
        data: Any = None,
        files: Any = None,
    ) -> requests.PreparedRequest:
        """A request to `{base}{path}` (path already percent-encoded), its body encoded once and signed when credentials exist."""
        sent_headers = dict(headers or {})
        if json_body is not None:
            sent_headers["Content-Type"] = "application/json"
            data = json_body
        url = f"{self.base_url}{path}{'?' + query if query else ''}"
        prepared = self._session().prepare_request(
            requests.Request(method, url, headers=sent_headers, data=data, files=files)
        )
        self._sign(prepared, sent_headers.keys())
        return prepared

    def send_prepared(
        self, prepared: requests.PreparedRequest, *, stream: bool = False, timeout: Optional[float] = None
    ) -> requests.Response:
        """Sends a prepared request as it is (so a retry sends the same bytes); a redirect is an error, never followed."""
        response = self._session().send(
            prepared.copy(), timeout=timeout or self.timeout, allow_redirects=False, stream=stream
        )
        if 300 <= response.status_code < 400:
            response.close()
            raise KeypoolApiError(
                f"keypool answered {response.status_code} (a redirect); not followed",
                status=response.status_code,
                code="redirect",
            )
        return response


def backoff(attempt: int) -> float:
    """The jittered wait before retry `attempt` (0 for the first retry)."""
    return _random() * BACKOFF_SECONDS * 2.0**attempt + BACKOFF_SECONDS / 2


def send_with_retries(call: Callable[[], requests.Response], *, retries: int, retry_answers: bool) -> requests.Response:
    """
    Sends `call` until it answers, retrying up to `retries` times: a connection never made
    always; with `retry_answers` (requests that are safe to repeat: a lease under its
    Idempotency-Key, a completion, a read) also a reset or timeout, a 5xx, and a 429 or 503,
    after their Retry-After when it is at most RETRY_AFTER_LIMIT_SECONDS (a longer one is
    answered as it is). Returns the last answer.
    """
    attempt = 0
    while True:
        try:
            response = call()
        except requests.exceptions.RequestException as error:
            if attempt < retries and (retry_answers or never_sent(error)):
                _sleep(backoff(attempt))
                attempt += 1
                continue
            raise KeypoolUnavailable(f"keypool could not be reached: {type(error).__name__}") from error
        status = response.status_code
        if attempt < retries and retry_answers and (status >= 500 or status == 429):
            header = response.headers.get("retry-after")
            wait = retry_after_of(None, header) if status in (429, 503) else None
            if wait is None or wait <= RETRY_AFTER_LIMIT_SECONDS:
                response.close()
                _sleep(wait if wait is not None else backoff(attempt))
                attempt += 1
                continue
        return response
