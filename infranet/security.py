"""The secret key for signed links, and HMAC tokens built on it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets

from infranet.config import Settings

log = logging.getLogger(__name__)
KEY_FILE = "secret_key"


def load_or_create_secret_key(settings: Settings) -> bytes:
    """`[security] secret_key`, else a key generated once and kept under data/."""
    configured = settings.security.secret_key
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    path = settings.service.data_dir / KEY_FILE
    if path.is_file():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    log.info("no [security] secret_key set: generated one and kept it in %s", path)
    return key


def sign(key: bytes, purpose: str, payload: str) -> str:
    """A URL-safe HMAC-SHA256 of `payload`, bound to a purpose so that a token
    made for one use (confirm) cannot be replayed for another (unsubscribe)."""
    mac = hmac.new(key, f"{purpose}\x00{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify(key: bytes, purpose: str, payload: str, token: str) -> bool:
    return hmac.compare_digest(sign(key, purpose, payload), token)
