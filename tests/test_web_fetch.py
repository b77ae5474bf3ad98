"""The safe fetcher (infranet/web/fetch.py) against a real HTTP server on 127.0.0.1, and its
refusals of internal addresses, given names through a resolver the test controls (no DNS)."""

from __future__ import annotations

import gzip
import ipaddress
import time
import zlib
from collections.abc import AsyncIterator

import pytest

from infranet.web.fetch import (
    Fetched,
    Fetcher,
    FetchFailed,
    IPAddress,
    fetch,
    is_public,
    normalise_url,
)
from tests.calendar_server import CalendarServer, calendar_server

MB = 1024 * 1024
ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n"


@pytest.fixture
async def server() -> AsyncIterator[CalendarServer]:
    async with calendar_server() as running:
        yield running


def names(table: dict[str, list[str]]) -> tuple[list[str], object]:
    """A resolver answering from `table` and the list of names it was asked."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in table:
            raise OSError("no such name")
        return table[host]

    return asked, resolve


def loopback_is_public(address: IPAddress) -> bool:
    """For tests that need the first hop to reach our server with `allow_private` off: the
    loopback server plays a public host, every other address is judged as in production."""
    return address == ipaddress.ip_address("127.0.0.1") or is_public(address)


async def get(url: str, **options: object) -> Fetched | FetchFailed:
    options.setdefault("max_bytes", MB)
    options.setdefault("timeout_s", 5.0)
    return await fetch(url, **options)  # type: ignore[arg-type]


async def test_a_calendar_then_not_modified_by_etag(server: CalendarServer) -> None:
    server.ics("a.ics", ICS)
    first = await get(server.url("a.ics"), allow_private=True)
    assert isinstance(first, Fetched) and first.body == ICS.encode() and first.etag
    second = await get(server.url("a.ics"), allow_private=True, etag=first.etag)
    assert isinstance(second, Fetched) and second.not_modified and second.body == b""
    assert server.hits[-1][1]["if-none-match"] == first.etag


async def test_not_modified_by_last_modified(server: CalendarServer) -> None:
    stamp = "Wed, 02 Dec 2026 10:00:00 GMT"
    server.ics("lm.ics", ICS, etag=False, last_modified=stamp)
    first = await get(server.url("lm.ics"), allow_private=True)
    assert isinstance(first, Fetched) and first.last_modified == stamp and first.etag is None
    second = await get(server.url("lm.ics"), allow_private=True, last_modified=stamp)
    assert isinstance(second, Fetched) and second.not_modified


async def test_error_status_and_missing_page_are_values(server: CalendarServer) -> None:
    server.status("broken.ics", 500)
    failed = await get(server.url("broken.ics"), allow_private=True)
    assert failed == FetchFailed("fetch.status", {"host": "127.0.0.1", "status": 500})
    assert "HTTP" in failed.localized("en") and "500" in failed.localized("pl")
    missing = await get(server.url("nothing-here.ics"), allow_private=True)
    assert isinstance(missing, FetchFailed) and missing.params["status"] == 404


async def test_a_server_that_does_not_answer_in_time(server: CalendarServer) -> None:
    server.slow("slow.ics", 5)
    began = time.monotonic()
    failed = await get(server.url("slow.ics"), allow_private=True, timeout_s=0.5)
    assert isinstance(failed, FetchFailed) and failed.key == "fetch.timeout"
    assert failed.params == {"host": "127.0.0.1", "seconds": "0.5"}
    assert time.monotonic() - began < 3


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
async def test_a_50_mb_body_is_refused_at_the_cap_without_reading_it(server: CalendarServer,
                                                                     declared: bool) -> None:
    server.huge("huge.ics", 50 * MB, declared=declared)
    failed = await get(server.url("huge.ics"), allow_private=True, max_bytes=MB, timeout_s=20)
    assert failed == FetchFailed("fetch.too_large", {"host": "127.0.0.1", "limit": "1 MB"})
    # The connection was dropped at the cap: the server produced a few MB at most (what the
    # socket buffers took), not 50.
    assert server.sent.get("huge.ics", 0) < 12 * MB


async def test_compressed_bodies_are_unpacked_only_up_to_the_cap(server: CalendarServer) -> None:
    server.raw("gz.ics", gzip.compress(ICS.encode()), content_encoding="gzip")
    server.raw("zl.ics", zlib.compress(ICS.encode()), content_encoding="deflate")
    # 200 MB of zeros in about 200 kB: refused at the 1 MB cap, never unpacked whole.
    bomb = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    packed = b"".join(bomb.compress(bytes(MB)) for _ in range(200)) + bomb.flush()
    assert len(packed) < MB
    server.raw("bomb.ics", packed, content_encoding="gzip")
    server.raw("br.ics", b"\x00\x01", content_encoding="br")
    for path in ("gz.ics", "zl.ics"):
        got = await get(server.url(path), allow_private=True)
        assert isinstance(got, Fetched) and got.body == ICS.encode(), path
    bombed = await get(server.url("bomb.ics"), allow_private=True)
    assert isinstance(bombed, FetchFailed) and bombed.key == "fetch.too_large"
    unknown = await get(server.url("br.ics"), allow_private=True)
    assert isinstance(unknown, FetchFailed) and unknown.key == "fetch.protocol"
    assert "Content-Encoding 'br'" in unknown.localized("en")
    assert server.hits[-1][1]["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("url, address", [
    ("http://127.0.0.1:9/x.ics", "127.0.0.1"),
    ("http://10.1.2.3/x.ics", "10.1.2.3"),
    ("http://192.168.0.1/x.ics", "192.168.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("http://[::1]:9/x.ics", "::1"),
    ("http://[::ffff:10.0.0.1]/x.ics", "::ffff:a00:1"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
    ("http://0.0.0.0:9/", "0.0.0.0"),
    ("http://224.0.0.1/", "224.0.0.1"),
    ("http://100.64.1.1/", "100.64.1.1"),
    # Other spellings of loopback are names to us, and refused by what they resolve to.
    ("http://2130706433:9/", "127.0.0.1"),
    ("http://0x7f000001:9/", "127.0.0.1"),
    ("http://127.1:9/", "127.0.0.1"),
])
async def test_internal_addresses_are_refused(url: str, address: str) -> None:
    failed = await get(url)
    assert isinstance(failed, FetchFailed) and failed.key == "fetch.blocked", failed
    assert failed.params["address"] == address


async def test_names_are_checked_by_what_they_resolve_to() -> None:
    asked, resolve = names({"intranet.example": ["10.0.0.5"],
                            "mixed.example": ["93.184.216.34", "127.0.0.1"],
                            "meta.example": ["169.254.169.254"]})
    failed = await get("https://intranet.example/cal.ics", resolver=resolve)
    assert failed == FetchFailed("fetch.blocked", {"host": "intranet.example", "address": "10.0.0.5"})
    # One internal answer among public ones refuses the name.
    mixed = await get("https://mixed.example/cal.ics", resolver=resolve)
    assert isinstance(mixed, FetchFailed) and mixed.params["address"] == "127.0.0.1"
    # Metadata addresses stay refused even where private ones are allowed.
    meta = await get("http://meta.example/", resolver=resolve, allow_private=True)
    assert isinstance(meta, FetchFailed) and meta.key == "fetch.blocked"
    unknown = await get("https://nowhere.example/cal.ics", resolver=resolve)
    assert unknown == FetchFailed("fetch.no_host", {"host": "nowhere.example"})
    assert asked == ["intranet.example", "mixed.example", "meta.example", "nowhere.example"]


async def test_connects_to_the_checked_address_with_the_name_as_host(server: CalendarServer) -> None:
    """The name is resolved once, by us, and the socket goes to that address: the system's
    DNS never sees `calendar.example` (it could not resolve it), the server sees it as Host."""
    server.ics("named.ics", ICS)
    port = server.base.rsplit(":", 1)[1]
    asked, resolve = names({"calendar.example": ["127.0.0.1"]})
    got = await get(f"http://calendar.example:{port}/named.ics", resolver=resolve,
                    allow_private=True)
    assert isinstance(got, Fetched) and got.body == ICS.encode()
    assert asked == ["calendar.example"]
    assert server.hits[-1][1]["host"] == f"calendar.example:{port}"


async def test_a_redirect_to_an_internal_address_is_refused(server: CalendarServer) -> None:
    port = server.base.rsplit(":", 1)[1]
    asked, resolve = names({"calendar.example": ["127.0.0.1"], "intranet.example": ["10.0.0.7"]})
    server.redirect("moved.ics", "http://intranet.example/admin")
    server.redirect("literal.ics", "http://10.9.9.9/x", code=301)
    server.redirect("meta.ics", "http://169.254.169.254/latest/meta-data/", code=307)
    async with Fetcher(max_bytes=MB, timeout=5, resolver=resolve, public=loopback_is_public) as fetcher:
        moved = await fetcher.get(f"http://calendar.example:{port}/moved.ics")
        literal = await fetcher.get(f"http://calendar.example:{port}/literal.ics")
        meta = await fetcher.get(f"http://calendar.example:{port}/meta.ics")
    assert moved == FetchFailed("fetch.blocked", {"host": "intranet.example", "address": "10.0.0.7"})
    assert literal == FetchFailed("fetch.blocked", {"host": "10.9.9.9", "address": "10.9.9.9"})
    assert isinstance(meta, FetchFailed) and meta.params["address"] == "169.254.169.254"
    assert "intranet.example" in asked


async def test_redirects_are_followed_a_few_times_and_only_to_http(server: CalendarServer) -> None:
    server.ics("final.ics", ICS)
    server.redirect("hop1", "/hop2")
    server.redirect("hop2", server.url("final.ics"), code=308)
    got = await get(server.url("hop1"), allow_private=True)
    assert isinstance(got, Fetched) and got.url == server.url("final.ics")
    server.redirect("loop", "/loop")
    loop = await get(server.url("loop"), allow_private=True)
    assert loop == FetchFailed("fetch.redirects", {"host": "127.0.0.1", "limit": 5})
    assert server.count("loop") == 6
    server.redirect("file", "file:///etc/passwd")
    refused = await get(server.url("file"), allow_private=True)
    assert isinstance(refused, FetchFailed) and refused.key == "fetch.bad_url"


@pytest.mark.parametrize("url, expected", [
    ("webcal://calendar.example/org.ics", "https://calendar.example/org.ics"),
    ("WEBCAL://calendar.example/a.ics#x", "https://calendar.example/a.ics"),
    ("  https://calendar.example/a.ics ", "https://calendar.example/a.ics"),
    ("http://calendar.example:8080/a?b=c", "http://calendar.example:8080/a?b=c"),
    ("HTTPS://Calendar.Example:443/A.ics", "https://calendar.example/A.ics"),
    ("http://[::1]:80/x", "http://[::1]/x"),
])
def test_urls_we_fetch(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://calendar.example/a.ics", "file:///etc/passwd",
                                 "javascript:alert(1)", "calendar.example/a.ics", "https://",
                                 "http://calendar.example:99999/", "http://exa mple.org/"])
def test_urls_we_refuse(url: str) -> None:
    refused = normalise_url(url)
    assert isinstance(refused, FetchFailed) and refused.key == "fetch.bad_url"


def test_public_addresses() -> None:
    for text in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert is_public(ipaddress.ip_address(text))
    for text in ("127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                 "100.64.0.1", "0.0.0.0", "255.255.255.255", "240.0.0.1", "224.0.0.1",
                 "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1",
                 "2002:7f00:1::", "64:ff9b::a00:1"):
        assert not is_public(ipaddress.ip_address(text)), text
