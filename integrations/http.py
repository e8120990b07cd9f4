"""The one place httpx is used: a retrying, pacing, recording HTTP client for every connector.

Retries (with jittered exponential backoff from stamina) happen only when repeating the call is
safe: reads always; writes only when the caller passes ``idempotent=True``; any call when
nothing was sent (connect failure) or the server said it did not process it (429, 503).
Every exchange is recorded as a :class:`~integrations.models.Call`; every httpx exception is
translated into :mod:`integrations.errors`. No header, token or body ever reaches a message.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import math
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import httpx
import stamina

from integrations.errors import (
    RemoteError,
    RemoteForbidden,
    RemoteNotFound,
    RemoteProtocolError,
    RemoteRefused,
    RemoteRejectedCredentials,
    RemoteUnavailable,
)
from integrations.guard import current as current_guard
from integrations.models import Call
from integrations.pacing import Limits, PaceTooLong, header_number, pacer_for, retry_after
from integrations.shape import Shape, parse_json, remote_words
from integrations.waiting import WaitHook, waiting

log = logging.getLogger("relink.http")
# Library practice: nothing reaches stderr unless the application configures logging (stamina
# logs each scheduled retry on the "stamina" logger; its messages never hold a secret).
log.addHandler(logging.NullHandler())
logging.getLogger("stamina").addHandler(logging.NullHandler())

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_ANY_STATUS = frozenset({429, 503})  # the server says it did not process the request
RETRY_SAFE_STATUS = frozenset({500, 502, 504})
# the product's own request id first (QuickBooks Online, Xero), then the generic one
REQUEST_ID_HEADERS = ("intuit_tid", "Xero-Correlation-Id", "X-Request-Id")
MessageOf = Callable[[Any], str | None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Timeouts, retries, waits and pacing of one client; ``clock``/``sleep`` are injectable."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    write_timeout: float = 10.0
    attempts: int = 4  # total tries of one call, the first included
    backoff_initial: float = 0.2  # stamina wait_initial (seconds)
    backoff_max: float = 5.0  # stamina wait_max
    backoff_jitter: float = 1.0  # stamina wait_jitter
    retry_timeout: float | None = None  # stamina timeout: give up retrying after this long
    max_wait: float = 30.0  # cap of any server-directed wait (Retry-After, rate-limit reset)
    max_body_bytes: int = 5_000_000  # larger answers are refused unread
    pace_below: int = 10  # spread calls over the window once this few are left
    reset_margin: float = 0.1  # seconds added after X-Rate-Limit-Reset before sending again
    limits: Limits = field(default_factory=Limits)  # what the vendors document, per product
    clock: Callable[[], float] = field(default=time.time, repr=False)  # Unix seconds
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    # told of every wait before it begins (what for, seconds), e.g. to show a spinner
    on_wait: WaitHook | None = field(default=None, repr=False, compare=False)


class HttpBacked:
    """What every client built on one :class:`HttpClient` (``self._http``) shares: closing,
    use as a context manager, and handing over the calls it recorded."""

    _http: HttpClient

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def drain_calls(self) -> list[Call]:
        return self._http.drain_calls()

    def rate_budget(self) -> dict[str, str]:
        return self._http.rate_budget()

    def share_rate_budget(self, workers: Callable[[], int]) -> None:
        self._http.share_rate_budget(workers)


@dataclass(frozen=True, slots=True)
class Reply:
    """A final answer: status, parsed JSON body (None when empty or unreadable) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]
    where: str  # "GET /path?query", for messages

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _Transient(Exception):
    """A failed attempt that may be repeated; ``args`` hold only a safe description."""

    def __init__(
        self, reason: str, *, status: int | None, protocol: bool = False, directed: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.protocol = protocol
        self.directed = directed  # the server said when to come back; the pacer waits


def clean_message(text: str, secrets: tuple[str, ...] = (), limit: int = 400) -> str:
    """One printable line, secrets masked, at most ``limit`` characters."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@functools.cache
def tls_context(verified_peers: bool) -> ssl.SSLContext:
    """The TLS context of every client in this process. Building one loads the CA bundle
    (~25 ms, httpx does it for each new client otherwise), so it is built once. A client of a
    plain-HTTP address (the sandbox on loopback) gets one without the bundle, which still
    verifies: were it ever asked for TLS, no certificate would pass."""
    if verified_peers:
        return httpx.create_ssl_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, hostnames checked


class HttpClient:
    """Sync httpx client for one remote system; thread-safe; a context manager."""

    def __init__(
        self,
        *,
        system: str,
        label: str,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.system = system
        self.label = label
        self.policy = policy or RetryPolicy()
        self._secrets = tuple(s for s in secrets if s)
        p = self.policy
        try:
            self._client = httpx.Client(
                base_url=base_url,
                headers=dict(headers or {}),
                timeout=httpx.Timeout(
                    connect=p.connect_timeout, read=p.read_timeout, write=p.write_timeout,
                    pool=p.connect_timeout,
                ),
                transport=transport,
                auth=auth,
                follow_redirects=False,
                verify=tls_context(not base_url.lower().startswith("http://")),
            )
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise RemoteUnavailable(f"{label} unavailable: invalid URL", system=system) from exc
        self._base_path = self._client.base_url.raw_path.decode("ascii").rstrip("/")
        # the longest one exchange may take: what a lease must still cover when it is sent
        self._send_seconds = p.connect_timeout + p.write_timeout + p.read_timeout
        self._pacer = pacer_for(  # in the product's own rate-limit dialect
            system, clock=p.clock, sleep=p.sleep, pace_below=p.pace_below,
            reset_margin=p.reset_margin, max_wait=p.max_wait, limits=p.limits,
        )
        self._pacer.on_wait = self._paced
        self._directed: tuple[str, float] | None = None  # a server's last "come back later"
        # the calls of each thread apart: the threads of a batch share one client, and each
        # attempt's audit entry records the calls its own thread made
        self._calls: dict[int, list[Call]] = {}
        self._calls_lock = threading.Lock()
        self._rate: dict[str, str] = {}  # the last rate-limit headers answered

    def __repr__(self) -> str:
        return f"HttpClient(system={self.system!r}, base_url={str(self._client.base_url)!r})"

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def drain_calls(self) -> list[Call]:
        """The exchanges this thread made since its last drain, oldest first (every attempt is
        one)."""
        with self._calls_lock:
            return self._calls.pop(threading.get_ident(), [])

    def rate_budget(self) -> dict[str, str]:
        """The rate-limit headers of the latest answer that had any (``X-Rate-Limit-*``, Xero's
        ``X-*Limit-Remaining``): what is left of the remote's budget, for progress displays."""
        with self._calls_lock:
            return dict(self._rate)

    def share_rate_budget(self, workers: Callable[[], int]) -> None:
        """Pace as one of ``workers()`` processes sharing this remote's budget (a batch run by
        several workers): each takes its share of what the remote says is left."""
        self._pacer.share = workers

    def clean(self, text: str) -> str:
        """``text`` as one safe line (secrets masked)."""
        return clean_message(text, self._secrets)

    # -- sending ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> Reply:
        """Send with retries; return the final answer of any status, or raise RemoteUnavailable."""
        try:
            request = self._client.build_request(
                method, path, params=params, json=json, data=data, headers=headers
            )
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise RemoteUnavailable(
                f"{self.label} unavailable: invalid request URL", system=self.system
            ) from exc
        if _origin(request.url) != _origin(self._client.base_url):
            # an absolute URL (e.g. from an answer): the token goes only where it was configured
            raise RemoteProtocolError(
                f"{self.label} unavailable: refused to send a request to"
                f" {self.clean(_origin_text(request.url))}, not the configured"
                f" {self.clean(_origin_text(self._client.base_url))}; nothing was sent",
                system=self.system,
            )
        where = f"{method} {self._relative(request.url)}"
        safe = method in SAFE_METHODS or idempotent
        p = self.policy
        tries = 0

        def retry(exc: Exception) -> bool | float:
            """stamina's verdict on a failed attempt: no retry, or a retry after no further
            wait: the pacer waits as the server said (``directed``), and the jittered backoff
            is waited here, through the policy's sleep and its ``on_wait`` hook."""
            if not isinstance(exc, _Transient):
                return False
            if exc.directed:
                return 0.0
            if tries >= p.attempts:
                return False  # stamina would stop: no wait for nothing
            self._back_off(f"{self.label}: {exc.reason}, try {tries + 1} of {p.attempts} next"
                           f" ({where})", tries)
            return 0.0

        try:
            for attempt in stamina.retry_context(
                on=retry,
                attempts=max(1, p.attempts),
                timeout=p.retry_timeout,
                wait_initial=p.backoff_initial,
                wait_max=p.backoff_max,
                wait_jitter=p.backoff_jitter,
            ):
                with attempt:
                    tries += 1
                    return self._attempt(request, where, safe)
        except _Transient as exc:
            error = RemoteProtocolError if exc.protocol else RemoteUnavailable
            message = f"{self.label} unavailable: {exc.reason} after {_attempts(tries)} ({where})"
            raise error(message, system=self.system, status=exc.status) from exc.__cause__
        raise AssertionError("unreachable: stamina yields at least one attempt")  # pragma: no cover

    def _attempt(self, request: httpx.Request, where: str, safe: bool) -> Reply:
        try:
            self._pacer.before_send()
        except PaceTooLong as exc:
            raise self._too_long(exc.until, exc.why, where, sent=False) from None
        guard = current_guard()
        write = request.method not in SAFE_METHODS
        if guard is not None:  # last word before the request leaves: it may refuse
            try:
                guard.before_send(write=write, seconds=self._send_seconds)
            except BaseException:
                self._pacer.after_answer(None)
                raise
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            self._pacer.after_answer(None)
            self._record(request, None, None)
            if guard is not None and write:
                guard.settled(changed=False if _unsent(exc) else None)
            raise self._transport_failure(exc, where, safe) from exc
        except BaseException:  # e.g. the auth flow could not renew the token: nothing was answered
            # (interrupted mid-send, a write stays "maybe sent" for the guard)
            self._pacer.after_answer(None)
            raise
        if guard is not None and write:
            status = response.status_code
            unprocessed = status in RETRY_ANY_STATUS or 400 <= status < 500
            guard.settled(changed=not unprocessed)
        try:
            raw = self._read(response, where, safe)
        finally:
            response.close()
            self._pacer.after_answer(response.headers, counted=response.status_code != 429)
            self._record(request, response.status_code, response.headers)
        return self._interpret(response, raw, where, safe)

    def _back_off(self, what: str, tries: int) -> None:
        """Wait before try ``tries + 1``: stamina's jittered exponential backoff."""
        p = self.policy
        jitter = random.uniform(0, p.backoff_jitter) if p.backoff_jitter > 0 else 0.0
        try:
            wait = min(p.backoff_max, p.backoff_initial * 2 ** (tries - 1) + jitter)
        except OverflowError:
            wait = p.backoff_max
        if wait > 0:
            with waiting(p.on_wait, what, wait):
                p.sleep(wait)

    def _paced(self, why: str, seconds: float) -> AbstractContextManager[object]:
        """The pacer's wait, told to the policy's hook in this client's words."""
        directed = self._directed
        if not why and directed is not None and self.policy.clock() <= directed[1] + 1.0:
            why = directed[0]  # the block after a 429 or 503
        return waiting(self.policy.on_wait, why or f"pacing calls to {self.label} within its"
                       " rate limit", seconds)

    def _too_long(self, until: float, why: str, where: str, *, sent: bool) -> RemoteUnavailable:
        """The error for a rate-limit wait longer than ``max_wait``: when to come back."""
        wait = max(0.0, until - self.policy.clock())
        return RemoteUnavailable(
            f"{self.label} unavailable: {self.clean(why)}{' (HTTP 429)' if sent else ''};"
            f" retry after {_utc(until)} (in {_duration(wait)}, longer than http.max_wait of"
            f" {self.policy.max_wait:g} s){'' if sent else '; the call was not sent'} ({where})",
            system=self.system, status=429 if sent else None,
        )

    def _transport_failure(self, exc: httpx.HTTPError, where: str, safe: bool) -> Exception:
        unsent = _unsent(exc)
        if isinstance(exc, httpx.ConnectError):
            reason = "could not connect"
        elif isinstance(exc, httpx.TimeoutException):
            reason = "timed out"
        elif isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            reason = "connection dropped"
        else:
            return RemoteUnavailable(
                f"{self.label} unavailable: {type(exc).__name__} ({where})", system=self.system
            )
        if unsent or safe:
            return _Transient(reason, status=None)
        return RemoteUnavailable(
            f"{self.label} unavailable: {reason}, not retried ({where})", system=self.system
        )

    def _read(self, response: httpx.Response, where: str, safe: bool) -> bytes:
        limit = self.policy.max_body_bytes
        declared = header_number(response.headers, "Content-Length")
        chunks: list[bytes] = []
        size = 0
        try:
            if declared is None or declared <= limit:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        break
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise self._transport_failure(exc, where, safe) from exc
        if size > limit or (declared is not None and declared > limit):
            raise RemoteProtocolError(
                f"{self.label} unavailable: answer larger than {limit} bytes ({where})",
                system=self.system, status=response.status_code,
            )
        return b"".join(chunks)

    def _interpret(self, response: httpx.Response, raw: bytes, where: str, safe: bool) -> Reply:
        status = response.status_code
        now = self.policy.clock()
        if status in RETRY_ANY_STATUS:
            wait = retry_after(response.headers, now)
            said = f"{self.label} asked to come back later (HTTP 503, per Retry-After)"
            if status == 429:  # read in the product's dialect; too long a wait fails at once
                wait, why = self._pacer.throttled(response.headers, now)
                if wait is not None and wait > self.policy.max_wait:
                    raise self._too_long(now + wait, why, where, sent=True)
                said = f"{self.clean(why)}; HTTP 429 (per {_told_by(response.headers)})"
            if wait is not None:
                self._directed = (said, now + wait)
                self._pacer.block_for(wait)
            reason = "rate limited (HTTP 429)" if status == 429 else "HTTP 503"
            raise _Transient(reason, status=status, directed=wait is not None)
        if status in RETRY_SAFE_STATUS and safe:
            raise _Transient(f"HTTP {status}", status=status)
        body: Any = None
        if raw.strip():
            try:
                body = parse_json(raw)
            except ValueError as exc:
                if 200 <= status < 300:
                    if safe:
                        reason = "answer is not JSON"
                        raise _Transient(reason, status=status, protocol=True) from exc
                    raise RemoteProtocolError(
                        f"{self.label} unavailable: answer is not JSON ({where})",
                        system=self.system, status=status,
                    ) from exc
        return Reply(status=status, body=body, headers=response.headers, where=where)

    def _relative(self, url: httpx.URL) -> str:
        path = url.raw_path.decode("ascii", errors="replace")
        if self._base_path and path.startswith(self._base_path + "/"):
            path = path[len(self._base_path) :]
        return path.replace("%5B", "[").replace("%5D", "]")

    def _record(
        self, request: httpx.Request, status: int | None, headers: Mapping[str, str] | None
    ) -> None:
        request_id = None
        for name in REQUEST_ID_HEADERS:
            if headers is not None and headers.get(name):
                request_id = self.clean(headers[name])[:200]
                break
        call = Call(
            system=self.system,
            method=request.method,
            path=self._relative(request.url),
            status=status,
            request_id=request_id,
            clock_ahead=None if headers is None else _clock_ahead(headers, self.policy.clock()),
        )
        log.debug("%s %s %s -> %s", call.system, call.method, call.path, call.status)
        rate = {name: value for name, value in (headers or {}).items()
                if name.lower().startswith(("x-rate-limit", "x-minlimit", "x-daylimit"))}
        with self._calls_lock:
            self._calls.setdefault(threading.get_ident(), []).append(call)
            if rate:
                self._rate = rate

    # -- answers ---------------------------------------------------------------------------

    def check(self, reply: Reply, message_of: MessageOf | None = None) -> Reply:
        """Return ``reply`` when it is a 2xx; otherwise raise the mapped RemoteError."""
        if reply.ok:
            return reply
        raise self.error_for(reply, message_of)

    def error_for(self, reply: Reply, message_of: MessageOf | None = None) -> RemoteError:
        """The RemoteError for a non-2xx answer, carrying the remote system's own words."""
        words = (message_of or remote_words)(reply.body)
        said = self.clean(words) if isinstance(words, str) and words.strip() else None
        status, where, label = reply.status, reply.where, self.label
        error: type[RemoteError]
        if status == 401:
            error = RemoteRejectedCredentials
            message = f"{label} rejected the credentials (HTTP 401)"
            message += f": {said} ({where})" if said else f" ({where})"
        elif status in _CLIENT_ERRORS or 400 <= status < 500:
            error, generic = _CLIENT_ERRORS.get(status, (RemoteRefused, "refused"))
            message = said or f"{label} {generic} (HTTP {status}, {where})"
        elif status >= 500:
            error, message = RemoteUnavailable, f"{label} unavailable: HTTP {status} ({where})"
        elif 300 <= status < 400:  # never followed: a token goes only where it was configured
            error = RemoteProtocolError
            message = (f"{label} unavailable: unexpected HTTP {status}, a redirect relink does"
                       f" not follow ({where})")
        else:
            error = RemoteProtocolError
            message = f"{label} unavailable: unexpected HTTP {status} ({where})"
        return error(message, system=self.system, status=status)

    def token_answer(self, reply: Reply, message_of: MessageOf,
                     *, numbers: tuple[str, ...] = ()) -> dict[str, Any]:
        """An OAuth 2.0 token answer (RFC 6749 §5): its ``access_token``, ``token_type``
        (bearer), ``expires_in``, ``refresh_token`` and the integer fields ``numbers`` a product
        adds. RemoteRejectedCredentials when the grant or the client is refused (a 401, or a 400
        saying so), the other errors as :meth:`check` gives them."""
        if reply.status in (400, 401):
            body = reply.body if isinstance(reply.body, dict) else {}
            code = body.get("error")
            if reply.status == 401 or code in _REJECTED_GRANTS:
                said = message_of(body) or (code if isinstance(code, str) else None)
                detail = f": {self.clean(said)}" if said else ""
                raise RemoteRejectedCredentials(
                    f"{self.label} rejected the credentials{detail}", system=self.system,
                    status=reply.status,
                )
        self.check(reply, message_of)
        shape = Shape(lambda detail: self.protocol_error(reply, detail))
        body = shape.mapping(reply.body, "the token answer")
        token = {
            "access_token": shape.req_text(body, "access_token"),
            "token_type": shape.req_text(body, "token_type"),
            "expires_in": shape.integer(body, "expires_in", optional=True),
            "refresh_token": shape.text(body, "refresh_token", optional=True),
        }
        token.update((name, shape.integer(body, name, optional=True)) for name in numbers)
        if str(token["token_type"]).lower() != "bearer":
            raise shape.fail("token_type should be bearer")
        return token

    def protocol_error(self, reply: Reply, detail: str) -> RemoteProtocolError:
        """A 2xx (or documented) answer whose body is not the documented shape."""
        return RemoteProtocolError(
            f"{self.label} unavailable: unexpected answer to {reply.where}: {self.clean(detail)}",
            system=self.system, status=reply.status,
        )


_REJECTED_GRANTS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
_CLIENT_ERRORS: dict[int, tuple[type[RemoteError], str]] = {
    403: (RemoteForbidden, "forbids this"),
    404: (RemoteNotFound, "found nothing"),
}


def _unsent(exc: httpx.HTTPError) -> bool:
    """The request never left the machine: no connection was made for it."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port: where a request (and its Authorization header) goes."""
    return url.scheme, url.host, url.port


def _origin_text(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii', errors='replace')}"


def _clock_ahead(headers: Mapping[str, str], now: float) -> float | None:
    """How far this machine's clock is ahead of the server's ``Date`` (whole seconds there)."""
    raw = headers.get("Date")
    if not raw:
        return None
    try:
        said = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return None if said.tzinfo is None else now - said.timestamp()


def _told_by(headers: Mapping[str, str]) -> str:
    """Which header said how long to wait after a 429 (else the product's documented wait)."""
    for name in ("Retry-After", "X-Rate-Limit-Reset"):
        if headers.get(name):
            return name
    return "its documented wait"


def _utc(when: float) -> str:
    try:
        return datetime.fromtimestamp(math.ceil(when), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "a time too far away to name"


def _duration(seconds: float) -> str:
    seconds = math.ceil(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"
