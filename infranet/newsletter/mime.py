"""E-mail messages as bytes, built fast and correctly for bulk sending.

Python's `email` package is correct but costs about a millisecond per
message; a personalised issue needs thousands per second. So the parts that
are the same for a whole issue (From, Subject, List-Id, ...) are folded once
with the standard library's SMTP policy, and each message only adds its own
To, Date, Message-ID and List-Unsubscribe lines and the base64 bodies. Tests
parse every kind of message back with the `email` package.

Header values coming from users (titles, names) are cleaned of control
characters (CR/LF cannot inject headers) and capped in length.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
SUBJECT_MAX = 150
CRLF = "\r\n"
# refold_source="all": fold (and RFC 2047-encode) every value, not only long ones.
_POLICY = policy.SMTP.clone(refold_source="all")


def clean_header_text(value: str, limit: int = SUBJECT_MAX) -> str:
    """One line of printable text: control characters become spaces, runs of
    spaces collapse, and over-long text is cut with an ellipsis."""
    value = " ".join(_CONTROL.sub(" ", value or "").split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def fold_header(name: str, value: str) -> str:
    """`Name: value` folded at 78 characters, RFC 2047 encoded words for non-ASCII,
    ending with CRLF (the standard library's SMTP policy does the work).

    Unstructured text with Polish letters (Subject) is written as adjacent encoded
    words instead: where the policy folds next to an encoded word it leaves a doubled
    space behind ("2026  – 7"), while adjacent encoded words decode back exactly.
    """
    if name.lower() == "subject" and not value.isascii():
        return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=CRLF)}{CRLF}"
    return _POLICY.fold(name, value)


def address_header(name: str, display: str | None, address: str) -> str:
    display = clean_header_text(display or "", 100)
    return fold_header(name, formataddr((display, address)) if display else address)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def split_from(from_address: str) -> tuple[str, str]:
    """"Name <a@b>" -> ("Name", "a@b")."""
    name, addr = parseaddr(from_address)
    return name, addr


LINE_LIMIT = 900  # octets; SMTP allows 998 per line, the margin covers UTF-8 and CRLF


def _fits_8bit(text: str) -> bool:
    """Every line within SMTP's limit once UTF-8 encoded (checked in C where possible)."""
    if "\r" in text:
        return False
    lines = text.split("\n")
    if max(map(len, lines)) * 4 <= LINE_LIMIT:  # 4 octets per character at most
        return True
    return all(len(line.encode("utf-8")) <= LINE_LIMIT for line in lines
               if len(line) * 4 > LINE_LIMIT)


def _body(text: str, eightbit: bool) -> tuple[str, str]:
    """(Content-Transfer-Encoding, body with CRLF line ends)."""
    if eightbit and _fits_8bit(text):
        body = text.replace("\n", CRLF)
        return "8bit", body if body.endswith(CRLF) else body + CRLF
    return "base64", _b64(text)


def _b64(text: str) -> str:
    """Base64 in 76-character lines (one C call and slicing: ~4x faster than encodebytes)."""
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return "".join([encoded[i:i + 76] + CRLF for i in range(0, len(encoded), 76)])


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipient: str
    data: bytes
    message_id: str
    crlf: bool = False  # built here: every line already ends with CRLF
    eightbit: bool = False  # has an 8bit part: needs a server with 8BITMIME (BODY=8BITMIME)
    dot_free: bool = False  # known to hold no line starting with ".": DATA needs no dot-stuffing


@dataclass
class DkimKey:
    selector: bytes
    domain: bytes
    private_key: bytes

    @classmethod
    def load(cls, selector: str, domain: str, key_file: Path) -> DkimKey:
        return cls(selector.encode(), domain.encode(), key_file.read_bytes())


DKIM_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
                b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type"]


def dkim_sign(data: bytes, key: DkimKey) -> bytes:
    """Prepend a DKIM-Signature covering, among others, both List-Unsubscribe headers."""
    import dkim

    present = [h for h in DKIM_HEADERS if re.search(rb"(?im)^" + re.escape(h) + rb":", data)]
    signature = dkim.sign(data, key.selector, key.domain, key.private_key,
                          include_headers=present, linesep=b"\r\n")
    return signature + data


class MessageFactory:
    """Builds messages sharing one From / Reply-To / List-Id / Subject.

    `static_headers` is computed once; `build()` adds per-recipient headers
    and the two parts, plain text first and HTML last (RFC 2046: the last
    alternative is the preferred one).
    """

    def __init__(self, *, from_address: str, subject: str, reply_to: str | None = None,
                 list_id: str | None = None, list_name: str | None = None, bulk: bool = True,
                 dkim: DkimKey | None = None) -> None:
        name, addr = split_from(from_address)
        if not addr or "@" not in addr:
            raise ValueError(f"From address {from_address!r} has no domain")
        self.sender = addr
        self.domain = domain_of(addr)
        self.dkim = dkim
        lines = [address_header("From", name, addr)]
        if reply_to:
            rname, raddr = split_from(reply_to)
            lines.append(address_header("Reply-To", rname, raddr))
        lines.append(fold_header("Subject", clean_header_text(subject)))
        if list_id:
            label = clean_header_text(list_name or "", 80).translate({ord("<"): None, ord(">"): None})
            lines.append(fold_header("List-Id", f"{label} <{list_id}>" if label else f"<{list_id}>"))
        if bulk:
            lines.append("Precedence: bulk" + CRLF)
            lines.append("Auto-Submitted: auto-generated" + CRLF)
        lines.append("MIME-Version: 1.0" + CRLF)
        self.static_headers = "".join(lines)

    def new_message_id(self, hint: str = "") -> str:
        return f"<{hint}{secrets.token_hex(8)}@{self.domain}>"

    def build(self, *, recipient: str, text: str, html: str | None,
              unsubscribe_https: str | None = None, unsubscribe_mailto: str | None = None,
              message_id: str | None = None, date: datetime | None = None,
              eightbit: bool = False) -> Envelope:
        """`eightbit`: the server accepts 8BITMIME, so parts go as UTF-8 text (no base64
        work, smaller messages) unless a line is too long for SMTP (998 octets)."""
        if not text:
            raise ValueError("a message needs a plain-text part")
        message_id = message_id or self.new_message_id()
        head = self._head(recipient, message_id, date, unsubscribe_https, unsubscribe_mailto)
        text_cte, text_body = _body(text, eightbit)
        if html is None:
            head += ['Content-Type: text/plain; charset="utf-8"', CRLF,
                     "Content-Transfer-Encoding: ", text_cte, CRLF, CRLF, text_body]
            is_8bit = text_cte == "8bit"
        else:
            html_cte, html_body = _body(html, eightbit)
            boundary = "=_" + secrets.token_hex(12)
            head += [f'Content-Type: multipart/alternative; boundary="{boundary}"', CRLF, CRLF,
                     "--", boundary, CRLF,
                     'Content-Type: text/plain; charset="utf-8"', CRLF,
                     "Content-Transfer-Encoding: ", text_cte, CRLF, CRLF, text_body,
                     "--", boundary, CRLF,
                     'Content-Type: text/html; charset="utf-8"', CRLF,
                     "Content-Transfer-Encoding: ", html_cte, CRLF, CRLF, html_body,
                     "--", boundary, "--", CRLF]
            is_8bit = "8bit" in (text_cte, html_cte)
        data = "".join(head).encode("utf-8")
        if self.dkim is not None:
            data = dkim_sign(data, self.dkim)
        return Envelope(self.sender, recipient, data, message_id, crlf=True, eightbit=is_8bit)

    def _head(self, recipient: str, message_id: str, date: datetime | None,
              unsubscribe_https: str | None, unsubscribe_mailto: str | None) -> list[str]:
        """The header block up to (not including) Content-Type."""
        if _CONTROL.search(recipient) or "@" not in recipient:
            raise ValueError(f"bad recipient {recipient!r}")
        head = [self.static_headers, "To: ", recipient, CRLF,
                "Date: ", format_datetime(date) if date else _now_header(), CRLF,
                "Message-ID: ", message_id, CRLF]
        links = [f"<{u}>" for u in (unsubscribe_https, unsubscribe_mailto) if u]
        if links:
            head += ["List-Unsubscribe: ", ("," + CRLF + " ").join(links), CRLF]
            if unsubscribe_https:
                head.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF)
        return head

    def build_filled(self, *, recipient: str, text: PartTemplate, html: PartTemplate,
                     text_values: dict[str, str], html_values: dict[str, str],
                     unsubscribe_https: str | None = None, unsubscribe_mailto: str | None = None,
                     message_id: str | None = None, date: datetime | None = None) -> Envelope | None:
        """The message `build(eightbit=True)` makes from the filled-in parts, byte for
        byte (but for the random boundary), from parts prepared once per segment: only
        the header block and the personal values are encoded per message.

        None when a value would push a line past SMTP's limit or carries a line break:
        `build()` then decides the encodings (base64) as for any other message.
        """
        text_encoded = _encode_values(text_values)
        html_encoded = _encode_values(html_values)
        if text_encoded is None or html_encoded is None:
            return None
        text_pieces = text.fill(text_encoded)
        html_pieces = html.fill(html_encoded) if text_pieces is not None else None
        if text_pieces is None or html_pieces is None:
            return None
        message_id = message_id or self.new_message_id()
        head = self._head(recipient, message_id, date, unsubscribe_https, unsubscribe_mailto)
        boundary = "=_" + secrets.token_hex(12)
        head += [f'Content-Type: multipart/alternative; boundary="{boundary}"', CRLF, CRLF,
                 "--", boundary, CRLF, _TEXT_8BIT_HEADER]
        between = f"--{boundary}{CRLF}{_HTML_8BIT_HEADER}".encode("ascii")
        end = f"--{boundary}--{CRLF}".encode("ascii")
        data = b"".join(["".join(head).encode("utf-8"), *text_pieces, between, *html_pieces, end])
        if self.dkim is not None:
            data = dkim_sign(data, self.dkim)
        # Header lines start with a name or a folding space, boundary lines with "--".
        dot_free = text.dot_free_with(text_encoded) and html.dot_free_with(html_encoded)
        return Envelope(self.sender, recipient, data, message_id, crlf=True, eightbit=True,
                        dot_free=dot_free and self.dkim is None)


def _encode_values(values: dict[str, str]) -> dict[str, bytes] | None:
    """UTF-8 values; None when one holds a line break (it would change the line structure)."""
    encoded = {name: value.encode("utf-8") for name, value in values.items()}
    if any(b"\r" in v or b"\n" in v for v in encoded.values()):
        return None
    return encoded


_TEXT_8BIT_HEADER = ('Content-Type: text/plain; charset="utf-8"' + CRLF
                     + "Content-Transfer-Encoding: 8bit" + CRLF + CRLF)
_HTML_8BIT_HEADER = ('Content-Type: text/html; charset="utf-8"' + CRLF
                     + "Content-Transfer-Encoding: 8bit" + CRLF + CRLF)


class PartTemplate:
    """A part's 8bit body (CRLF line ends, UTF-8) with personal values still to fill in.

    Made once per distinct selection of an issue from `parts`: literal text at even
    positions, value names at odd ones. The literal runs are converted and encoded
    here, once; `fill()` joins them with one reader's values after checking the only
    lines whose length depends on them (those holding a value) against LINE_LIMIT.
    `dot_free` says whether DATA can carry the part without dot-stuffing, so the
    sender need not search every message for a line starting with ".".
    """

    __slots__ = ("checks", "dot_free", "line_start", "pieces", "size")

    def __init__(self, pieces: list[bytes | str], checks: list[tuple[int, tuple[str, ...]]],
                 line_start: tuple[str, ...], dot_free: bool) -> None:
        self.pieces = pieces
        self.checks = checks
        self.line_start = line_start
        self.dot_free = dot_free
        self.size = sum(len(p) for p in pieces)

    @classmethod
    def make(cls, parts: list[str]) -> PartTemplate | None:
        """None when the part could never go as 8bit (a CR, or a literal line over the
        limit) or does not end in literal text (its final CRLF would depend on a value)."""
        if not parts[-1] or any("\r" in p for p in parts[::2]):
            return None
        pieces: list[bytes | str] = []
        checks: list[tuple[int, tuple[str, ...]]] = []
        line_start: list[str] = []
        dot_free = True
        line_octets, line_names = 0, []
        for i, part in enumerate(parts):
            if i % 2:
                if line_octets == 0:  # (after another value only if that one is empty)
                    line_start.append(part)
                pieces.append(part)
                line_names.append(part)
                continue
            body = part.replace("\n", CRLF)
            if i == len(parts) - 1 and not body.endswith(CRLF):
                body += CRLF
            encoded = body.encode("utf-8")
            pieces.append(encoded)
            if encoded.startswith(b".") or b"\n." in encoded:
                dot_free = False
            first_end = encoded.find(b"\r\n")
            if first_end < 0:
                line_octets += len(encoded)
                continue
            if not _close_line(checks, line_octets + first_end, line_names):
                return None
            last_start = encoded.rfind(b"\r\n") + 2
            inner = encoded[first_end + 2:last_start - 2]
            if len(inner) > LINE_LIMIT and max(map(len, inner.split(b"\r\n"))) > LINE_LIMIT:
                return None
            line_octets, line_names = len(encoded) - last_start, []
        return cls(pieces, checks, tuple(line_start), dot_free)

    def fill(self, values: dict[str, bytes]) -> list[bytes] | None:
        """The body's pieces with `values` (encoded) in place; None when a value holds
        a line break or makes its line too long for 8bit."""
        for octets, names in self.checks:
            if octets + sum(len(values[n]) for n in names) > LINE_LIMIT:
                return None
        return [p if isinstance(p, bytes) else values[p] for p in self.pieces]

    def dot_free_with(self, values: dict[str, bytes]) -> bool:
        """No line of the filled part starts with "." (values never hold line breaks)."""
        return self.dot_free and not any(values[n].startswith(b".") for n in self.line_start)


def _close_line(checks: list[tuple[int, tuple[str, ...]]], octets: int, names: list[str]) -> bool:
    """Record a finished line holding values; False for a literal line over the limit."""
    if names:
        checks.append((octets, tuple(names)))
        return True
    return octets <= LINE_LIMIT


_date_cache: tuple[int, str] = (0, "")


def _now_header() -> str:
    """The Date value for now, formatted once a second (the header has no finer unit)."""
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        # "+0000": UTC, not "-0000" (zone unknown)
        _date_cache = (second, format_datetime(datetime.fromtimestamp(second, UTC)))
    return _date_cache[1]
