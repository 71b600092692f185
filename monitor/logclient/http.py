"""Defensive HTTP for reading a public log.

Bounded concurrency, a per-log request budget, ``Retry-After`` and adaptive slow-down on
429, capped jittered retries on 5xx / timeouts / resets / truncated bodies, a response-size
cap per request (what was asked can hold, ``monitor.logclient.limits``; the body is refused as
it is read, never read whole first), no redirects off the log's host nor from https to http,
a malformed HTTP answer (a header over 8 KB, more than 128 headers) refused as such, a
versioned User-Agent, and every request, retry and failure counted.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from monitor import __version__
from monitor.core.aio import backoff_delay
from monitor.core.errors import LogResponseError, TransientLogError
from monitor.core.metrics import ClientMetrics
from monitor.core.ratelimit import TokenBucket
from monitor.logclient.limits import DEFAULT_MAX_ENTRY_BYTES, DEFAULT_MEMORY_BUDGET

USER_AGENT = f"tlog-monitor/{__version__}"
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
# the statuses returned to the caller; any other raises (a caller may widen the set, e.g. to
# read a 401's challenge)
RETURNED = frozenset({200, 201, 404})
_MAX_REDIRECTS = 3


@dataclass(frozen=True)
class HttpPolicy:
    """How politely and defensively to read one log."""

    requests_per_second: float = 8.0  # the public Rekor v1 allows about 16
    burst: float = 4.0
    max_concurrency: int = 4
    timeout_seconds: float = 30.0
    max_attempts: int = 6
    backoff_base_seconds: float = 0.5
    backoff_cap_seconds: float = 30.0
    max_response_bytes: int = 32 << 20  # an answer whose request has no cap of its own
    max_retry_after_seconds: float = 300.0
    # what the log's answers may take (``monitor.logclient.limits``, ``budget``)
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET
    # how long entries (or tiles) of a tree the log signed may stay unavailable before that
    # is a ``missing_entries`` integrity failure rather than an outage
    missing_after_seconds: float = 600.0


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class LogHttp:
    """HTTP GET/POST against one log's base URL. 200 and 404 are returned; everything else
    is retried (429, 5xx, network) or raised (other statuses)."""

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        log: str,
        metrics: ClientMetrics,
        policy: HttpPolicy = HttpPolicy(),
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._host = urlsplit(self.base_url).netloc
        self._session = session
        self._log = log
        self._metrics = metrics
        self.policy = policy
        self.bucket = TokenBucket(policy.requests_per_second, policy.burst)
        self._slots = asyncio.Semaphore(policy.max_concurrency)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        accept: str | None = None,
        max_bytes: int | None = None,
        headers: Mapping[str, str] | None = None,
        statuses: frozenset[int] = RETURNED,
        off_host: bool = False,
    ) -> Response:
        """``max_bytes``: the most the answer may take (``max_response_bytes`` if None);
        ``headers``: this request's own (an ``Authorization``, say); ``statuses``: those
        returned rather than raised; ``off_host``: redirects may lead to other hosts (for
        content checked by its digest, such as a registry's blobs on a CDN), which are never
        sent the ``Authorization``."""
        sent = dict(headers or {})
        if accept:
            sent["Accept"] = accept
        return await self._request(
            "GET",
            path,
            params=params,
            headers=sent,
            max_bytes=max_bytes,
            statuses=statuses,
            off_host=off_host,
        )

    async def head(
        self,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        statuses: frozenset[int] = RETURNED,
    ) -> Response:
        """A HEAD: the status and headers, with an empty body."""
        return await self._request("HEAD", path, headers=headers, statuses=statuses)

    async def post_json(self, path: str, payload: Any, *, max_bytes: int | None = None) -> Response:
        return await self._request("POST", path, json_body=payload, max_bytes=max_bytes)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        max_bytes: int | None = None,
        statuses: frozenset[int] = RETURNED,
        off_host: bool = False,
    ) -> Response:
        url = urljoin(self.base_url, path.lstrip("/"))
        # a request's own cap is what was asked can hold; the policy's is for any other answer
        cap = self.policy.max_response_bytes if max_bytes is None else max_bytes
        last_problem = "no attempt made"
        for attempt in range(1, self.policy.max_attempts + 1):
            waited = await self.bucket.acquire()
            if waited:
                self._metrics.rate_limit_wait.labels(self._log).inc(waited)
            try:
                response = await self._once(
                    method,
                    url,
                    params,
                    headers,
                    json_body,
                    cap=cap,
                    statuses=statuses,
                    off_host=off_host,
                )
            except _Retryable as e:
                last_problem = e.reason
                self._metrics.requests.labels(self._log, e.label).inc()
                if attempt == self.policy.max_attempts:
                    break
                self._metrics.retries.labels(self._log, e.reason_label).inc()
                delay = self._backoff(attempt)
                if e.retry_after is not None:
                    delay = max(delay, e.retry_after)
                await asyncio.sleep(delay)
                continue
            self.bucket.succeeded()
            return response
        self._metrics.failures.labels(self._log, "exhausted").inc()
        raise TransientLogError(
            f"{self._log}: {method} {url} failed after {self.policy.max_attempts} attempts: "
            f"{last_problem}"
        )

    def _backoff(self, attempt: int) -> float:
        # the first retry already waits twice the base: attempt 1 counts as two failures
        p = self.policy
        return backoff_delay(attempt + 1, p.backoff_base_seconds, p.backoff_cap_seconds, self._rng)

    async def _once(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        json_body: Any,
        *,
        cap: int,
        statuses: frozenset[int] = RETURNED,
        off_host: bool = False,
    ) -> Response:
        req_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, identity"}
        req_headers.update(headers or {})
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_seconds)
        async with self._slots:
            started = time.perf_counter()
            try:
                for _ in range(_MAX_REDIRECTS + 1):
                    async with self._session.request(
                        method,
                        url,
                        params=params,
                        headers=req_headers,
                        json=json_body,
                        timeout=timeout,
                        allow_redirects=False,
                    ) as resp:
                        if resp.status in (301, 302, 303, 307, 308):
                            self._metrics.requests.labels(self._log, str(resp.status)).inc()
                            url = self._redirect_target(
                                url, resp.headers.get("Location"), off_host=off_host
                            )
                            if urlsplit(url).netloc != self._host:
                                req_headers.pop("Authorization", None)  # ours, not theirs
                            continue
                        return await self._read(resp, cap, statuses, head=method == "HEAD")
                self._metrics.failures.labels(self._log, "redirect").inc()
                raise LogResponseError(f"{self._log}: too many redirects from {url}")
            except TimeoutError:
                raise _Retryable("timeout", "timeout", "timed out") from None
            except aiohttp.ClientPayloadError as e:
                raise _Retryable("truncated", "truncated", f"truncated body: {e}") from None
            except aiohttp.ClientConnectionError as e:
                raise _Retryable("connection", "connection", f"connection error: {e}") from None
            except aiohttp.ClientResponseError as e:
                # the answer broke HTTP itself (a header over 8 KB, too many headers, a bad
                # status line): the log's fault, said in one line, not a crash of the pass
                self._metrics.failures.labels(self._log, "bad_response").inc()
                raise LogResponseError(
                    f"{self._log}: malformed HTTP answer to {method} {url}: {e.message[:200]}"
                ) from None
            except aiohttp.ClientError as e:  # e.g. a Location that is no URL
                self._metrics.failures.labels(self._log, "bad_response").inc()
                raise LogResponseError(
                    f"{self._log}: {method} {url} failed: {type(e).__name__}: {str(e)[:200]}"
                ) from None
            finally:
                self._metrics.latency.labels(self._log).observe(time.perf_counter() - started)

    def _redirect_target(self, url: str, location: str | None, *, off_host: bool) -> str:
        """Where a redirect from ``url`` leads, if it may be followed: the log's own host
        (any host with ``off_host``), and never from https to http (which would hand the
        answer to anyone on the path)."""
        if not location:
            raise LogResponseError(f"{self._log}: redirect without a Location from {url}")
        target = urljoin(url, location)
        parts = urlsplit(target)
        if parts.netloc != self._host and not off_host:
            self._metrics.failures.labels(self._log, "redirect").inc()
            raise LogResponseError(
                f"{self._log}: refused a redirect off the log's host to {parts.netloc}"
            )
        if parts.scheme != "https" and urlsplit(url).scheme == "https":
            self._metrics.failures.labels(self._log, "redirect").inc()
            raise LogResponseError(
                f"{self._log}: refused a redirect from https to {parts.scheme or 'no scheme'}"
            )
        return target

    async def _read(
        self, resp: aiohttp.ClientResponse, cap: int, statuses: frozenset[int], *, head: bool
    ) -> Response:
        status = resp.status
        if status == 429:
            retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
            if retry_after is not None:
                retry_after = min(retry_after, self.policy.max_retry_after_seconds)
            self.bucket.back_off(retry_after)
            raise _Retryable("429", "rate_limited", "HTTP 429 Too Many Requests", retry_after)
        if status in _RETRY_STATUSES:
            raise _Retryable(str(status), "server_error", f"HTTP {status}")
        if head:  # no body follows, whatever length is declared
            self._metrics.requests.labels(self._log, str(status)).inc()
            if status not in statuses:
                self._metrics.failures.labels(self._log, f"http_{status}").inc()
                raise LogResponseError(f"{self._log}: HTTP {status} for HEAD {resp.url}", status)
            return Response(status, b"", resp.headers.copy())
        declared = resp.content_length
        gzipped = "gzip" in (resp.headers.get("Content-Encoding") or "")
        # a compressed answer's length is not what it takes: its bytes are counted as read
        if declared is not None and declared > cap and not gzipped:
            self._metrics.requests.labels(self._log, str(status)).inc()
            self._metrics.failures.labels(self._log, "oversize").inc()
            raise LogResponseError(f"{self._log}: response of {declared} bytes exceeds {cap}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > cap:
                self._metrics.requests.labels(self._log, str(status)).inc()
                self._metrics.failures.labels(self._log, "oversize").inc()
                raise LogResponseError(f"{self._log}: response exceeds {cap} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        if declared is not None and len(body) != declared and not gzipped:
            raise _Retryable("truncated", "truncated", f"body {len(body)} of {declared} bytes")
        # an answer read whole is counted here, once, whether it is returned or refused
        self._metrics.requests.labels(self._log, str(status)).inc()
        if status not in statuses:
            self._metrics.failures.labels(self._log, f"http_{status}").inc()
            raise LogResponseError(
                f"{self._log}: HTTP {status} for {resp.url}: {body[:200]!r}", status
            )
        return Response(status, body, resp.headers.copy())  # names case-blind


class _Retryable(Exception):
    def __init__(
        self, label: str, reason_label: str, reason: str, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.label = label
        self.reason_label = reason_label
        self.reason = reason
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After``: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
