"""A feed as served: its validators and its body, whole or in parts, and streaming the parts.

`FeedCache` (`infranet.calendar.feed`) makes `Feed`s; the HTTP handler answers with
`Feed.body` or streams `Feed.parts()` through `stream_body` (gzip on the way).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from infranet.calendar.feed_filter import FeedFilter


@dataclass
class Feed:
    """One feed as served: its validators and its body, kept whole (`body`) or, when it is too
    large for the cache's budget, assembled from the cached per-event bytes for each response
    (`parts()`, streamed). The gzip and identity bodies are different representations, so
    they carry different ETags (`etag`, `gzip_etag`)."""

    key: FeedFilter
    etag: str
    last_modified: datetime
    count: int
    size: int  # bytes of the identity body
    body: bytes | None
    _parts: Callable[[], list[bytes]] | None = field(default=None, repr=False)
    _gzip: bytes | None = field(default=None, repr=False)

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'

    @property
    def streamed(self) -> bool:
        return self.body is None

    def parts(self) -> list[bytes]:
        """The identity body in pieces, taken at once: call it right after `FeedCache.get`
        (before any await), so that one response never mixes two builds."""
        if self.body is not None:
            return [self.body]
        assert self._parts is not None
        return self._parts()


# Pieces of a streamed body are sent in chunks of about this size, with a pause for the
# event loop between two (gzip costs about 1 ms per chunk).
STREAM_CHUNK = 64 * 1024


def _chunks(parts: list[bytes]) -> Iterable[bytes]:
    batch: list[bytes] = []
    size = 0
    for part in parts:
        batch.append(part)
        size += len(part)
        if size >= STREAM_CHUNK:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)


async def stream_body(parts: list[bytes], *, gzipped: bool) -> AsyncIterator[bytes]:
    """A streamed feed's body, gzip-compressed on the way when asked."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzipped else None  # 31: gzip wrapper
    for chunk in _chunks(parts):
        data = compressor.compress(chunk) if compressor is not None else chunk
        if data:
            yield data
        await asyncio.sleep(0)
    if compressor is not None:
        yield compressor.flush()
