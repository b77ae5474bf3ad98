"""The secret key for signed links, and HMAC tokens built on it.

Where the key comes from, in order:
1. `[security] secret_key` (or $INFRANET_SECURITY__SECRET_KEY): a configured key wins;
   an empty value counts as not set.
2. The key kept in the database (table `service_secrets`), so that every instance on one
   database signs and checks links with the same key without any configuration.
3. When the database holds none yet: the key in `data/secret_key` that earlier versions
   generated, adopted into the database so that links already sent stay valid; else a new
   random key. Two instances starting together store one key between them: the key is
   inserted with "ON CONFLICT DO NOTHING" and read back in the same transaction.

A key shorter than MIN_KEY_BYTES (an empty file, a placeholder in the config) is refused at
start: an HMAC with an empty or guessable key lets anyone forge an unsubscribe link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from infranet.config import Settings
from infranet.storage.database import Database, rows_changed
from infranet.storage.models import ServiceSecret
from infranet.storage.types import utcnow

log = logging.getLogger(__name__)
KEY_FILE = "secret_key"  # in the data directory; only read, from versions before the database kept it
KEY_NAME = "secret_key"  # its row in service_secrets
MIN_KEY_BYTES = 32
HOW_TO_MAKE_ONE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


class SecretKeyError(Exception):
    """A key that must not be used; the message is one line saying how to fix it."""


def check_key(key: bytes, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        size = "empty" if not key else f"only {len(key)} bytes long"
        raise SecretKeyError(
            f"the secret key in {where} is {size}; a key needs at least {MIN_KEY_BYTES} random bytes: "
            f"set [security] secret_key to the output of {HOW_TO_MAKE_ONE}, or remove the bad key "
            "to have one generated")
    return key


def configured_key(settings: Settings) -> bytes | None:
    configured = settings.security.secret_key
    if configured is None or not configured.get_secret_value():
        return None  # an empty value (`secret_key = ""`, an empty variable) means "not set"
    return check_key(configured.get_secret_value().encode(),
                     "[security] secret_key ($INFRANET_SECURITY__SECRET_KEY)")


def read_key_file(path: Path) -> bytes | None:
    """The key an earlier version kept in the data directory, or None when there is none."""
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    return check_key(key, str(path))


async def load_secret_key(settings: Settings, db: Database) -> bytes:
    """The key this instance signs with; the schema must be migrated (service_secrets)."""
    configured = configured_key(settings)
    if configured is not None:
        return configured
    path = settings.service.data_dir / KEY_FILE
    from_file = read_key_file(path)
    candidate = from_file if from_file is not None else secrets.token_urlsafe(48).encode()
    encoded = base64.b64encode(candidate).decode()
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    async with db.transaction() as session:
        inserted = await session.execute(insert(ServiceSecret).values(
            name=KEY_NAME, value=encoded, created_at=utcnow()).on_conflict_do_nothing(
            index_elements=[ServiceSecret.name]))
        stored = await session.scalar(select(ServiceSecret.value).where(ServiceSecret.name == KEY_NAME))
    if stored is None:  # the insert did nothing, yet nothing is there: deleted in between
        raise SecretKeyError("the secret key row in service_secrets vanished during start; start again")
    try:
        key = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    check_key(key, "the database (table service_secrets, name 'secret_key')")
    if rows_changed(inserted) == 1:
        if from_file is not None:
            log.info("adopted the secret key of %s into the database; instances on this database "
                     "share it and the file is no longer read", path)
        else:
            log.info("no [security] secret_key set: generated one and kept it in the database")
    elif from_file is not None and from_file != key:
        log.warning("%s differs from the secret key kept in the database; the database's key is "
                    "used and the file can be removed", path)
    return key


def sign(key: bytes, purpose: str, payload: str) -> str:
    """A URL-safe HMAC-SHA256 of `payload`, bound to a purpose so that a token
    made for one use (confirm) cannot be replayed for another (unsubscribe)."""
    mac = hmac.new(key, f"{purpose}\x00{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify(key: bytes, purpose: str, payload: str, token: str) -> bool:
    return hmac.compare_digest(sign(key, purpose, payload), token)
