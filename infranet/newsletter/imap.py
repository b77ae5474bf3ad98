"""The bounce mailbox over IMAP: the standard library's `imaplib`, called from a worker
thread (`asyncio.to_thread`) by `infranet.newsletter.bounces`.

imaplib rather than an asyncio IMAP library: the mailbox is read a batch at a time by
one task, so a blocking client in a thread costs nothing, and it adds no dependency.
Everything here is blocking; one `Mailbox` is used by one thread at a time.

Memory stays bounded whatever the mailbox holds: UIDs are listed (a few bytes each),
messages are fetched `batch_size` at a time, and each only up to FETCH_LIMIT octets
(the report parts of a DSN or ARF report come before the returned original message).
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
import threading
from collections.abc import Iterable

from infranet.config import BounceSettings

FETCH_LIMIT = 256 * 1024
# Left in the folder when `unmatched_folder` is "": not read again.
UNMATCHED_KEYWORD = "$InfranetUnmatched"
_UID = re.compile(rb"\bUID (\d+)")


class MailboxError(Exception):
    """The IMAP server could not be reached or refused a step; the text says which
    (never the password)."""


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uid_set(uids: Iterable[int]) -> str:
    return ",".join(str(u) for u in uids)


class Mailbox:
    """One logged-in IMAP connection with `folder` selected."""

    def __init__(self, settings: BounceSettings) -> None:
        self.settings = settings
        self.conn: imaplib.IMAP4 | None = None
        self.can_move = False
        # One command at a time, whichever thread asks: a reader cancelled mid-fetch must
        # not log out under the fetch its abandoned worker thread is still running.
        self.lock = threading.Lock()

    def open(self) -> None:
        s = self.settings
        where = f"{s.host}:{s.port}"
        try:
            context = ssl.create_default_context()
            if not s.validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if s.tls == "ssl":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(s.host or "", s.port, ssl_context=context,
                                                        timeout=s.timeout_s)
            else:
                conn = imaplib.IMAP4(s.host or "", s.port, timeout=s.timeout_s)
                if s.tls == "starttls":
                    conn.starttls(context)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"cannot connect to the IMAP server {where}: {exc}") from None
        self.conn = conn
        try:
            conn.login(s.user or "", s.password.get_secret_value() if s.password else "")
        except imaplib.IMAP4.error as exc:
            self.close()
            raise MailboxError(f"the IMAP server {where} refused the login of {s.user!r}: "
                               f"{_text(exc)}") from None
        self.can_move = "MOVE" in conn.capabilities
        self._ok(conn.select(_quote(s.folder)), f"cannot open the folder {s.folder!r}")
        for name in {s.done_folder, s.unmatched_folder} - {"", s.folder}:
            conn.create(_quote(name))  # "already exists" is fine

    def _ok(self, answer: tuple[str, list], what: str) -> list:
        typ, data = answer
        if typ != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise MailboxError(f"{what}: {detail}")
        return data

    @property
    def _c(self) -> imaplib.IMAP4:
        if self.conn is None:
            raise MailboxError("not connected to the IMAP server")
        return self.conn

    def waiting(self) -> list[int]:
        """UIDs of the messages still to read, oldest first."""
        criteria = ["UNDELETED"]
        if not self.settings.unmatched_folder:
            criteria += ["UNKEYWORD", UNMATCHED_KEYWORD]
        data = self._call("UID", "SEARCH", *criteria)
        return sorted(int(u) for u in b" ".join(d for d in data if d).split())

    def fetch(self, uids: list[int]) -> list[tuple[int, bytes]]:
        """(uid, first FETCH_LIMIT octets) of each message that still exists."""
        data = self._call("UID", "FETCH", _uid_set(uids), f"(UID BODY.PEEK[]<0.{FETCH_LIMIT}>)")
        found = []
        for item in data:
            if isinstance(item, tuple):
                match = _UID.search(item[0])
                if match:
                    found.append((int(match.group(1)), item[1]))
        return found

    def move(self, uids: list[int], folder: str) -> None:
        """Move messages to `folder` (MOVE, RFC 6851; else COPY, flag deleted, expunge)."""
        if not uids:
            return
        what = f"cannot move messages to {folder!r}"
        if self.can_move:
            self._call("UID", "MOVE", _uid_set(uids), _quote(folder), what=what)
            return
        self._call("UID", "COPY", _uid_set(uids), _quote(folder), what=what)
        self._call("UID", "STORE", _uid_set(uids), "+FLAGS.SILENT", r"(\Deleted)", what=what)
        self._call("EXPUNGE", what=what)

    def mark_unmatched(self, uids: list[int]) -> None:
        if uids:
            self._call("UID", "STORE", _uid_set(uids), "+FLAGS.SILENT",
                       f"({UNMATCHED_KEYWORD})")

    def _call(self, command: str, *args: str, what: str | None = None) -> list:
        with self.lock:
            return self._call_locked(command, *args, what=what)

    def _call_locked(self, command: str, *args: str, what: str | None) -> list:
        try:
            call = self._c.uid if command == "UID" else getattr(self._c, command.lower())
            answer = call(*args)
        except (OSError, imaplib.IMAP4.abort) as exc:
            self.conn = None
            raise MailboxError(f"the IMAP connection was lost: {exc}") from None
        except imaplib.IMAP4.error as exc:
            raise MailboxError(f"{what or command}: {_text(exc)}") from None
        return self._ok(answer, what or f"IMAP {' '.join(args[:1]) or command} failed")

    def close(self) -> None:
        with self.lock:
            self._close_locked()

    def _close_locked(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.logout()
        except (OSError, imaplib.IMAP4.error):
            with contextlib.suppress(OSError):
                conn.shutdown()


def _text(exc: Exception) -> str:
    value = exc.args[0] if exc.args else exc
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
