"""keypool's HTTP API for applications: lease a key, complete the lease, count a use, proxy a call."""

from __future__ import annotations

import json as _json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Tuple
from urllib.parse import quote

import requests
from botocore.credentials import Credentials

from . import _http
from ._http import Answer, Transport, send_with_retries
from .errors import KeypoolApiError, NoUsableKey, error_for
from .keys import key_id_for
from .lease import Completion, Lease

_POOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: The longest one wait for a cooling key is stretched by, so callers that saw the same key come back spread out.
_MAX_JITTER_SECONDS = 1.0
#: How long a proxied call waits for keypool's answer by default, seconds: keypool answers only
#: once the provider has, within the pool's proxyTimeoutSeconds (default 120 s) and its 30 s
#: margin, so a shorter wait (the client's per-request timeout, meant for its quick calls) would
#: give up on a call the provider still bills. A pool set longer needs a longer `timeout`. The
#: TypeScript client's default is the same.
PROXY_TIMEOUT_SECONDS = 150.0


@dataclass(frozen=True)
class KeyInfo:
    """A key as listing shows it: never the secret, only its mask."""

    key_id: str
    masked_key: str
    usage_count: int
    status: str
    last_used_at: Optional[str]
    created_at: str
    label: Optional[str] = None


@dataclass(frozen=True)
class PoolPolicy:
    """A pool's policy (the operator's): `max_uses` is the cap."""

    pool: str
    max_uses: int
    lease_ttl_seconds: int
    cooldown_seconds: int
    provider: str


def _segment(value: str) -> str:
    return quote(value, safe="")


def _query(params: Dict[str, Any]) -> str:
    """A query string encoded as SigV4 signs it (RFC 3986: a space is %20, never +)."""
    return "&".join(f"{quote(name, safe='-_.~')}={quote(str(value), safe='-_.~')}" for name, value in params.items())


class Keypool:
    """
    A client for keypool's HTTP API at `url` (an execute-api URL, or the local stack's
    http://127.0.0.1:3000). Requests are signed with SigV4 whenever AWS credentials are
    available (given, or botocore's default chain), for `region` (default: the URL's, else
    AWS_REGION or the profile's); they go unsigned only when there are none.

    `proxy_url`: where proxy mode is served when it is not `url` (a function URL signs for
    `lambda`, inferred from its host, or named by `proxy_service`). `timeout`: per request,
    seconds. `retries`: further tries of a request that is safe to repeat. `max_wait_seconds`:
    how long `lease()` waits in total for a cooling key when the pool is dry (default 0).
    Safe to share between threads.
    """

    def __init__(
        self,
        url: str,
        region: Optional[str] = None,
        *,
        credentials: Optional[Credentials] = None,
        proxy_url: Optional[str] = None,
        proxy_service: Optional[str] = None,
        timeout: float = 10.0,
        retries: int = 2,
        max_wait_seconds: float = 0.0,
    ) -> None:
        if retries < 0 or max_wait_seconds < 0 or timeout <= 0:
            raise ValueError("keypool: retries and max_wait_seconds are >= 0, timeout > 0")
        self.url = url.rstrip("/")
        self.retries = retries
        self.max_wait_seconds = max_wait_seconds
        self._api = Transport(url, region=region, credentials=credentials, service="execute-api", timeout=timeout)
        self._proxy = (
            Transport(proxy_url or url, region=region, credentials=credentials, service=proxy_service, timeout=timeout)
            if proxy_url or proxy_service
            else self._api
        )

    def pool(self, name: str = "stability") -> "Pool":
        """The pool `name`: an application is granted one pool's client routes."""
        # fullmatch: `$` would let a trailing newline through, into the path.
        if not _POOL_NAME.fullmatch(name) or name in (".", ".."):
            raise ValueError('keypool: a pool is 1-64 letters, digits, "_", "." or "-" (not "." or "..")')
        return Pool(self, name)

    @property
    def signs(self) -> bool:
        """Whether requests are signed: AWS credentials were found."""
        return self._api.signs

    def close(self) -> None:
        self._api.close()
        self._proxy.close()

    def __enter__(self) -> "Keypool":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        body: Optional[Dict[str, Any]] = None,
        *,
        headers: Optional[Dict[str, str]] = None,
        query: str = "",
        retry_answers: bool = True,
    ) -> Answer:
        payload = None if body is None else _json.dumps(body, separators=(",", ":")).encode("utf-8")
        response = send_with_retries(
            # Prepared and signed anew on each try: a JSON body holds no file to read only once.
            lambda: self._api.send_prepared(
                self._api.prepare(method, path, json_body=payload, headers=headers, query=query)
            ),
            retries=self.retries,
            retry_answers=retry_answers,
        )
        return Answer(response)

    def _expect(self, answer: Answer, status: int) -> Any:
        if answer.status == status and answer.body is not None:
            return answer.body
        if 200 <= answer.status < 300:
            raise KeypoolApiError(f"keypool answered {answer.status} without the expected body", status=answer.status)
        raise error_for(answer.status, answer.body, answer.headers.get("retry-after"), signed=self._api.signs)


class Pool:
    """One pool of keypool: leases, completions, counts, listing, proxy."""

    def __init__(self, client: Keypool, name: str) -> None:
        self._client = client
        self.name = name
        self._base = f"/pools/{_segment(name)}"

    def __repr__(self) -> str:
        return f"Pool({self.name!r})"

    def lease(
        self,
        max_uses: Optional[int] = None,
        ttl_seconds: Optional[int] = None,
        *,
        max_wait_seconds: Optional[float] = None,
    ) -> Lease:
        """
        The least recently used key of the pool whose count is <= `max_uses` (the pool's cap,
        or lower; above it is InvalidRequest), held for `ttl_seconds` (the pool's lease TTL, or
        shorter). Use it in a `with` block, or complete it yourself.

        Every call sends its own Idempotency-Key and repeats it on its own retries (a lost
        connection, a 5xx, a 429/503 with a short Retry-After), so a retry never takes a second
        use. A dry pool raises NoUsableKey; when a key is cooling it first waits for it, as long
        as the waits of this call stay within `max_wait_seconds` (default: the client's).
        PoolNotFound when the pool does not exist.
        """
        body: Dict[str, Any] = {}
        for name, value in (("maxUses", max_uses), ("ttlSeconds", ttl_seconds)):
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"keypool: {name} is a whole number >= 0")
                body[name] = value
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        budget = self._client.max_wait_seconds if max_wait_seconds is None else max_wait_seconds
        while True:
            answer = self._client._call("POST", f"{self._base}/leases", body, headers=headers)
            try:
                return Lease(self, self._client._expect(answer, 200))
            except NoUsableKey as dry:
                wait = dry.retry_after
                if wait is None or wait > budget:
                    raise
                # At least a second (the API rounds up), plus 10 % jitter, within what is left.
                sleep = min(budget, wait + _http._random() * min(_MAX_JITTER_SECONDS, wait / 10))
                budget -= sleep
                _http._sleep(sleep)

    def increment(self, key_id: str) -> int:
        """Counts one use of the key without a lease (no cap applies); the new count. Never retried once sent."""
        path = f"{self._base}/keys/{_segment(key_id)}/usage"
        answer = self._client._call("POST", path, retry_answers=False)
        return int(self._client._expect(answer, 200)["usageCount"])

    def increment_usage(self, api_key: str) -> int:
        """`increment` for the key holding this secret (its id is computed here; the secret is not sent)."""
        return self.increment(key_id_for(api_key))

    def policy(self) -> PoolPolicy:
        """The pool's policy (GET /pools/{pool}: an operator's route)."""
        body = self._client._expect(self._client._call("GET", self._base), 200)
        return PoolPolicy(
            pool=body["pool"],
            max_uses=body["maxUses"],
            lease_ttl_seconds=body["leaseTtlSeconds"],
            cooldown_seconds=body["cooldownSeconds"],
            provider=body["provider"],
        )

    def keys(self, status: Optional[str] = None) -> Iterator[KeyInfo]:
        """Every key of the pool, secrets masked, page by page (GET /pools/{pool}/keys: an operator's route)."""
        cursor: Optional[str] = None
        while True:
            params = {"limit": "1000", "status": status, "cursor": cursor}
            query = _query({name: value for name, value in params.items() if value})
            page = self._client._expect(self._client._call("GET", f"{self._base}/keys", query=query), 200)
            for key in page["keys"]:
                yield KeyInfo(
                    key_id=key["keyId"],
                    masked_key=key["maskedKey"],
                    usage_count=key["usageCount"],
                    status=key["status"],
                    last_used_at=key.get("lastUsedAt"),
                    created_at=key["createdAt"],
                    label=key.get("label"),
                )
            cursor = page.get("cursor")
            if not cursor:
                return

    def proxy(
        self,
        path: str,
        *,
        method: str = "POST",
        files: Any = None,
        data: Any = None,
        json: Any = None,
        headers: Optional[Dict[str, str]] = None,
        params: Optional[Dict[str, str]] = None,
        idempotency_key: Optional[str] = None,
        stream: bool = False,
        timeout: Optional[float] = None,
    ) -> requests.Response:
        """
        Proxy mode: keypool calls the pool's provider at `path` (e.g.
        "v2beta/stable-image/generate/core") with a key of its own choosing and completes the
        lease from the provider's answer; the caller never holds a key. `files`/`data` are sent
        as multipart (or form) exactly as requests would, `json` as JSON. Returns the
        provider's answer as a `requests.Response` (`stream=True` to read a large one in
        chunks), with `x-keypool-key-id` and `x-keypool-outcome` headers. keypool's own
        refusals (NoUsableKey, PoolNotFound, ...) are raised, as is an answer of the gateway in
        front of keypool (no `x-keypool-outcome`: IAM's 403 is AccessDenied).

        `timeout`: how long to wait for keypool's answer, seconds (default: the longer of
        PROXY_TIMEOUT_SECONDS and the client's `timeout`).

        An Idempotency-Key is sent (a new one unless given): repeating a call with the same key
        after a dropped connection replays its answer instead of billing again, or, when the
        provider may have billed it and no answer was kept, raises IdempotencyConflict rather
        than ask again. Only a connection never made is retried here.
        """
        provider_path = "/".join(quote(part, safe="") for part in path.strip("/").split("/"))
        if not provider_path:
            raise ValueError("keypool: proxy needs the provider's path, e.g. v2beta/stable-image/generate/core")
        sent_headers = dict(headers or {})
        sent_headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        payload = None
        if json is not None:
            payload = _json.dumps(json, separators=(",", ":")).encode("utf-8")
        query = _query(params or {})
        transport = self._client._proxy
        wait = timeout if timeout is not None else max(PROXY_TIMEOUT_SECONDS, transport.timeout)
        # Encoded and signed once: a file read into the body is read only once, so a retry
        # after a connection never made sends the same bytes.
        prepared = transport.prepare(
            method,
            f"{self._base}/proxy/{provider_path}",
            json_body=payload,
            headers=sent_headers,
            query=query,
            data=data,
            files=files,
        )
        response = send_with_retries(
            lambda: transport.send_prepared(prepared, stream=stream, timeout=wait),
            retries=self._client.retries,
            retry_answers=False,
        )
        if response.status_code >= 400:
            refusal = _not_the_providers(response)
            if refusal is not None:
                response.close()
                raise error_for(
                    response.status_code, refusal[0], response.headers.get("retry-after"), signed=transport.signs
                )
        return response

    def _complete(self, lease_id: str, outcome: str, retry_after: Optional[int]) -> Completion:
        body: Dict[str, Any] = {"outcome": outcome}
        if retry_after is not None:
            body["retryAfterSeconds"] = retry_after
        # A completion repeated after a lost answer changes nothing and answers the key as it stands.
        answer = self._client._call("POST", f"{self._base}/leases/{_segment(lease_id)}/complete", body)
        result = self._client._expect(answer, 200)
        return Completion(
            key_id=result["keyId"],
            usage_count=result["usageCount"],
            status=result["status"],
            report_ignored=result.get("reportIgnored"),
        )


def _not_the_providers(response: requests.Response) -> Optional[Tuple[Any]]:
    """
    An error answer of the proxy that is not the provider's, as (its JSON body or None,):
    keypool's own refusal (`{"error", "message"}`), or the gateway's in front of keypool (IAM's
    403, its throttling's 429, a function that failed), which carries none of keypool's headers,
    where every provider answer keypool passes on carries `x-keypool-outcome`. None for the
    provider's answer.
    """
    body: Any = None
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
        except ValueError:
            body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str):
        return (body,)
    return None if "x-keypool-outcome" in response.headers else (body,)
