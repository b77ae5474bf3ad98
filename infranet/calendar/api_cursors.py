"""The signed `cursor` tokens of `/api/events`: where the next page starts, bound to its query."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from infranet.errors import ValidationFailed

# Cursor positions count microseconds from here: before any event the parameters allow.
_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)


class Cursors:
    """Opaque `cursor` tokens of `/api/events`: a position (occurrence start, event id) signed
    with the service's key together with the query it belongs to, so that a forged, cut or
    borrowed cursor is a clear 400 (never a 500, never a page of another query)."""

    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"infranet api cursor\0" + secret).digest()

    def _sign(self, query: str, micros: int, event_id: int) -> str:
        mac = hmac.new(self._key, f"{query}\0{micros}\0{event_id}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")

    def make(self, query: str, position: tuple[datetime, int]) -> str:
        start, event_id = position
        micros = (start - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{event_id}.{self._sign(query, micros, event_id)}"

    def read(self, query: str, token: str) -> tuple[datetime, int]:
        fail = ValidationFailed("calendar.error.cursor", field="cursor")
        parts = token.strip().split(".")
        if len(token) > 100 or len(parts) != 3:
            raise fail
        micros, event_id, signature = parts
        if not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in (micros, event_id)):
            raise fail  # 18 digits: within 64-bit ids; microseconds up to about the year 9999
        if not hmac.compare_digest(
                signature.encode(), self._sign(query, int(micros), int(event_id)).encode()):
            raise fail
        try:
            return _EPOCH + timedelta(microseconds=int(micros)), int(event_id)
        except OverflowError:  # signed by us, so not reached; a 400 all the same
            raise fail from None
