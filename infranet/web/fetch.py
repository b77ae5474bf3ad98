"""Fetching a URL somebody gave us, without letting them use the server to probe its network.

Members give the service URLs to follow (their calendars); the service fetches them on its
own, from inside its network. A careless fetch of such a URL would let anyone read or poke
what only the server reaches: `http://127.0.0.1:5432`, the cloud's metadata service at
169.254.169.254, an intranet host behind a public name, or a public name whose DNS answer
changes between our check and our connect (DNS rebinding). So:

- only `http` and `https` (`webcal://` is `https://`); no proxy from the environment;
- the host is resolved by us (a `Resolver` that tests replace), every address checked
  (`is_public`: no loopback, private, link-local, multicast, reserved, unspecified or shared
  addresses; IPv4 inside IPv6 checked as IPv4), and the connection made to the address that
  was checked: httpx's connection pool runs on our network backend (`_GuardedBackend`), which
  receives the host name, resolves and checks it, and connects to the checked IP, while TLS
  still verifies and sends SNI for the name and the request keeps its Host header;
- cloud metadata addresses (169.254.169.254, fd00:ec2::254, 168.63.129.16, ...) are refused
  even with `allow_private` (which tests and closed networks set);
- redirects are followed here, not by httpx (at most `max_redirects`), each one checked
  again, since each goes through the same backend;
- one deadline for the whole fetch (resolution, redirects, body); a body cap counted on the
  decoded bytes while they stream in (gzip and deflate are undone here a bounded piece at a
  time, so a small compressed body that unpacks to gigabytes stops at the cap), a declared
  `Content-Length` over it refused before reading, and the connection dropped at the cap
  rather than read to its end;
- conditional GET: the caller's ETag and Last-Modified go out as If-None-Match and
  If-Modified-Since, and a 304 comes back as `Fetched(not_modified=True)`.

Nothing raises to the caller: a failure is a `FetchFailed` naming what went wrong by
message id and parameters (`failure.localized(lang)`), which a caller can store and show.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses (text) the name resolves to; raises OSError when it does not.
Resolver = Callable[[str, int], Awaitable[list[str]]]

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5

# Refused whatever `allow_private` says: reading them gives away the machine's credentials.
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Hetzner ...
    "169.254.170.2",  # AWS ECS task credentials
    "fd00:ec2::254",  # AWS over IPv6
    "168.63.129.16",  # Azure's wire server (a public address)
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchFailed:
    """What went wrong, as a message id and its parameters (`fetch.*` in the catalogs)."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def localized(self, lang: str) -> str:
        from infranet.i18n import t

        return t(lang, self.key, **self.params)


@dataclass(frozen=True)
class Fetched:
    """A 2xx answer with its body, or (`not_modified`) a 304 to our conditional GET."""

    url: str  # after redirects
    body: bytes = b""
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None


class _Refused(Exception):
    """Raised inside the transport to end a fetch with a FetchFailed; never leaves this module."""

    def __init__(self, failure: FetchFailed) -> None:
        super().__init__(failure.key)
        self.failure = failure


def is_public(address: IPAddress) -> bool:
    """An address anyone on the Internet reaches as the same machine: not loopback, private,
    link-local, multicast, reserved, unspecified or shared (CGNAT). IPv4 carried in IPv6
    (mapped, 6to4, NAT64) is judged as that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return is_public(inner)
    return address.is_global and not (address.is_multicast or address.is_reserved
                                      or address.is_unspecified)


def allowed(address: IPAddress, *, allow_private: bool = False,
            public: Callable[[IPAddress], bool] = is_public) -> bool:
    if address in METADATA or (isinstance(address, ipaddress.IPv6Address)
                               and address.ipv4_mapped in METADATA):
        return False
    return allow_private or public(address)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def normalise_url(url: str) -> str | FetchFailed:
    """`url` as we fetch it (`webcal://` as `https://`), or why it cannot be fetched."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        return FetchFailed("fetch.bad_url", {"url": text[:200]})
    scheme = parts.scheme.lower()
    if scheme in ("webcal", "webcals"):
        parts = parts._replace(scheme="https")
    elif scheme not in ("http", "https"):
        return FetchFailed("fetch.bad_url", {"url": text[:200]})
    if not parts.hostname or any(ch.isspace() for ch in text):
        return FetchFailed("fetch.bad_url", {"url": text[:200]})
    # One spelling per address (scheme and host in lower case, no default port), so that the
    # same calendar given twice is seen to be the same.
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port if parts.port not in (None, {"http": 80, "https": 443}[scheme]) else None
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port else "")
    return urlunsplit(parts._replace(scheme=scheme, netloc=netloc, fragment=""))


def _host(url: str) -> str:
    return urlsplit(url).hostname or url[:100]


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the check between the name and the connect: the
    name is resolved here, every address checked, and the socket opened to a checked
    address (TLS above it still uses the name, for SNI and the certificate)."""

    def __init__(self, resolver: Resolver, allow_private: bool,
                 public: Callable[[IPAddress], bool]) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolver = resolver
        self._allow_private = allow_private
        self._public = public

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        bare = host.strip("[]")
        try:
            return [ipaddress.ip_address(bare)]
        except ValueError:
            pass
        try:
            found = await self._resolver(bare, port)
        except (OSError, UnicodeError):
            found = []
        addresses: list[IPAddress] = []
        for text in found:
            with contextlib.suppress(ValueError):
                addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        if not addresses:
            raise _Refused(FetchFailed("fetch.no_host", {"host": bare}))
        return addresses

    async def connect_tcp(self, host: str, port: int,
                          timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port)
        # One refused address refuses the name: a name that also points inside is not one
        # we trust with the others.
        for address in addresses:
            if not allowed(address, allow_private=self._allow_private, public=self._public):
                raise _Refused(FetchFailed("fetch.blocked", {"host": host.strip("[]"),
                                                             "address": str(address)}))
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout=timeout,
                                                     local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(self, path: str,
                                  timeout: float | None = None,  # noqa: ASYNC109 - httpcore's
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise _Refused(FetchFailed("fetch.bad_url", {"url": path[:200]}))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@cache
def _ssl_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs milliseconds, paid again by every new client."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: _GuardedBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        # httpx 0.28 takes no network backend of its own: the pool it made is replaced by the
        # same pool on ours (tests/test_web_fetch.py proves every connect goes through it).
        self._pool = httpcore.AsyncConnectionPool(ssl_context=ssl_context, network_backend=backend,
                                                  max_connections=20, max_keepalive_connections=10,
                                                  keepalive_expiry=5.0)


class Fetcher:
    """One client for many fetches (a refresh round): its connections and TLS set-up are
    shared. Use as `async with Fetcher(...) as fetcher: await fetcher.get(url)`."""

    def __init__(self, *, max_bytes: int, timeout: float, allow_private: bool = False,
                 resolver: Resolver | None = None, max_redirects: int = MAX_REDIRECTS,
                 public: Callable[[IPAddress], bool] = is_public,
                 user_agent: str = "infranet (calendar follower)",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_redirects = max_redirects
        backend = _GuardedBackend(resolver or system_resolver, allow_private, public)
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(backend, ssl_context or _ssl_context()),
            follow_redirects=False, trust_env=False, timeout=httpx.Timeout(timeout),
            headers={"User-Agent": user_agent})

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, url: str, *, etag: str | None = None,
                  last_modified: str | None = None) -> Fetched | FetchFailed:
        """GET `url` within the rules above; never raises (but for cancellation)."""
        start = normalise_url(url)
        if isinstance(start, FetchFailed):
            return start
        host = _host(start)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(start, etag, last_modified)
        except TimeoutError:
            return FetchFailed("fetch.timeout", {"host": host, "seconds": _seconds(self.timeout)})
        except _Refused as exc:
            return exc.failure
        except httpx.TimeoutException:
            return FetchFailed("fetch.timeout", {"host": host, "seconds": _seconds(self.timeout)})
        except httpx.ConnectError as exc:
            if "SSL" in str(exc) or "certificate" in str(exc).lower():
                return FetchFailed("fetch.tls", {"host": host, "detail": _detail(exc)})
            return FetchFailed("fetch.connect", {"host": host, "detail": _detail(exc)})
        except (httpx.HTTPError, httpx.InvalidURL, ssl.SSLError, OSError, ValueError) as exc:
            return FetchFailed("fetch.protocol", {"host": host, "detail": _detail(exc)})

    async def _follow(self, url: str, etag: str | None,
                      last_modified: str | None) -> Fetched | FetchFailed:
        headers = {"Accept": "text/calendar, */*;q=0.5", "Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for _hop in range(self.max_redirects + 1):
            async with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    target = normalise_url(urljoin(url, response.headers["location"]))
                    if isinstance(target, FetchFailed):
                        return target
                    url = target
                    continue
                if response.status_code == 304:
                    return Fetched(url, not_modified=True, etag=response.headers.get("etag") or etag,
                                   last_modified=response.headers.get("last-modified") or last_modified)
                if not 200 <= response.status_code < 300:
                    return FetchFailed("fetch.status", {"host": _host(url),
                                                        "status": response.status_code})
                body = await self._read(response, url)
                if isinstance(body, FetchFailed):
                    return body
                return Fetched(url, body, etag=response.headers.get("etag"),
                               last_modified=response.headers.get("last-modified"),
                               content_type=response.headers.get("content-type"))
        return FetchFailed("fetch.redirects", {"host": _host(url), "limit": self.max_redirects})

    async def _read(self, response: httpx.Response, url: str) -> bytes | FetchFailed:
        too_large = FetchFailed("fetch.too_large", {"host": _host(url), "limit": _size(self.max_bytes)})
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            return too_large
        decoder = _Decoder.for_encoding(response.headers.get("content-encoding", ""))
        if decoder is None:
            return FetchFailed("fetch.protocol", {
                "host": _host(url),
                "detail": f"Content-Encoding {response.headers.get('content-encoding', '')[:40]!r}"})
        chunks: list[bytes] = []
        size = 0
        try:
            # Raw bytes, decoded here a bounded piece at a time: a compressed body that
            # unpacks to gigabytes stops at the cap instead of being unpacked first.
            async for raw in response.aiter_raw():
                for chunk in decoder.feed(raw, self.max_bytes + 1 - size):
                    size += len(chunk)
                    if size > self.max_bytes:
                        return too_large  # leaving the stream drops the connection, unread
                    chunks.append(chunk)
        except zlib.error as exc:
            return FetchFailed("fetch.protocol", {"host": _host(url), "detail": _detail(exc)})
        return b"".join(chunks)


class _Decoder:
    """Content-Encoding undone with a bound on what one call may produce. Only what we ask
    for (`Accept-Encoding: gzip, deflate`) and identity; anything else is refused."""

    def __init__(self, wbits: int | None) -> None:
        self._zlib = zlib.decompressobj(wbits) if wbits is not None else None

    @classmethod
    def for_encoding(cls, header: str) -> _Decoder | None:
        codings = [c.strip().lower() for c in header.split(",") if c.strip()]
        if not codings or codings == ["identity"]:
            return cls(None)
        if codings in (["gzip"], ["x-gzip"]):
            return cls(zlib.MAX_WBITS | 16)
        if codings == ["deflate"]:
            return cls(zlib.MAX_WBITS | 32)  # zlib-wrapped or (auto-detected) gzip
        return None

    def feed(self, data: bytes, room: int) -> Iterable[bytes]:
        """What `data` decodes to, in pieces of at most `room` (+1 beyond the cap is enough
        for the caller to know it is over)."""
        if self._zlib is None:
            yield data
            return
        pending = data
        while pending:
            piece = self._zlib.decompress(pending, max(room, 1))
            pending = self._zlib.unconsumed_tail
            room -= len(piece)
            yield piece
            if not piece and not pending:
                return


async def fetch(url: str, *, max_bytes: int, timeout_s: float, allow_private: bool = False,
                etag: str | None = None, last_modified: str | None = None,
                resolver: Resolver | None = None) -> Fetched | FetchFailed:
    """One fetch with a client of its own (see `Fetcher` for many)."""
    async with Fetcher(max_bytes=max_bytes, timeout=timeout_s, allow_private=allow_private,
                       resolver=resolver) as fetcher:
        return await fetcher.get(url, etag=etag, last_modified=last_modified)


def _detail(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]


def _seconds(value: float) -> str:
    return f"{value:g}"


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MB"
    if limit >= 1024:
        return f"{limit / 1024:g} kB"
    return f"{limit} B"
