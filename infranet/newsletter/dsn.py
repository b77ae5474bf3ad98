"""Reading what arrives in the bounce mailbox: delivery status notifications (RFC 3464),
complaint feedback (ARF, RFC 5965) and mailto: unsubscribe requests.

Pure functions over the message bytes (the standard library's `email` package with the
compat32 policy: the fastest, and lenient with the malformed mail bounces often are);
`infranet.newsletter.bounces` matches the result to deliveries and acts on it.

What counts as the recipient's hard bounce (`verdict`) is what counts during the SMTP
dialogue (`infranet.newsletter.replies.classify`, RFC 3463 codes first, the text second):
a permanent failure of the address or mailbox (5.1.x, 5.2.x). Not counted:
- `Action: delayed` and 4.x.x: temporary (the same message may still arrive), and a
  failure reported with a 4.x.x status (given up after retries) is soft;
- 5.7.x (security or policy: SPF, DKIM, DMARC, a blocked sending IP), 5.3.x and 5.6.x
  (our system, our content), and a 5.x.x whose text blames the sender ("spam",
  "blocklist", "reputation"...): the recipient's mailbox is fine, our mail was refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32

from infranet.newsletter.replies import ReplyKind, classify

HARD, SOFT, DELAYED, SENDER, NONE = "hard", "soft", "delayed", "sender", "none"

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_DIAGNOSTIC = re.compile(r"(?i)\s*smtp\s*;\s*([245]\d\d)\b")
_UNSUBSCRIBE = re.compile(r"(?i)\bunsubscribe\s+(\d{1,18})\s+([A-Za-z0-9_-]{20,100})")
# Our Message-IDs of newsletter deliveries: <issue.delivery.random@domain> (compose.py).
_OUR_MESSAGE_ID = re.compile(r"<(\d{1,18})\.(\d{1,18})\.[0-9a-f]{8,64}@[^<>\s]+>")
_COMPLAINTS = {"abuse", "fraud"}
# Headers where the address a report was sent to (our VERP envelope sender) shows up.
_ENVELOPE_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To",
                     "X-Original-Recipient", "Return-Path")


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block of a DSN."""

    recipient: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # "5.1.1"
    diagnostic: str


@dataclass(frozen=True)
class Report:
    """What one message in the mailbox says."""

    key: str  # sha256 of its Message-ID (or of its bytes without one): once-only handling
    kind: str  # dsn | complaint | unsubscribe | other
    envelope_text: str  # where VERP addresses may appear: envelope headers, original's headers
    original_message_id: str | None
    recipients: tuple[RecipientStatus, ...] = ()
    feedback_type: str = ""
    unsubscribe: tuple[int, str] | None = None  # (subscriber id, token)

    @property
    def verdict(self) -> str:
        """The worst verdict over the recipients (a newsletter message has one)."""
        found = {verdict(r) for r in self.recipients}
        for kind in (HARD, SENDER, SOFT, DELAYED):
            if kind in found:
                return kind
        return NONE

    @property
    def first_status(self) -> RecipientStatus | None:
        return self.recipients[0] if self.recipients else None

    def delivery_hint(self) -> int | None:
        """The delivery id our Message-ID format names (checked against the stored
        Message-ID before use)."""
        if self.original_message_id:
            found = _OUR_MESSAGE_ID.search(self.original_message_id)
            if found:
                return int(found.group(2))
        return None


def verdict(status: RecipientStatus) -> str:
    """hard | soft | delayed | sender | none for one recipient, by the rule the sender
    applies to SMTP replies (`replies.classify`), so that a refusal counts alike whether
    it came during the SMTP dialogue or later in a DSN."""
    action = status.action.lower()
    if action in ("delivered", "relayed", "expanded"):
        return NONE
    if action == "delayed":
        return DELAYED
    code = _STATUS.search(status.status) or _STATUS.search(status.diagnostic)
    if code is None:
        return SOFT if action == "failed" else NONE
    smtp = _SMTP_DIAGNOSTIC.match(status.diagnostic)  # "smtp; 550 5.1.1 ..." (RFC 3464)
    kind = classify(int(smtp.group(1)) if smtp else 0, code.group(0), status.diagnostic)
    return {ReplyKind.RECIPIENT: HARD, ReplyKind.SENDER: SENDER, ReplyKind.ACCEPTED: NONE}.get(
        kind, SOFT)


def report_key(message: Message, data: bytes) -> str:
    message_id = (message.get("Message-ID") or "").strip()
    return hashlib.sha256(message_id.encode("utf-8", "replace") if message_id else data).hexdigest()


def parse(data: bytes) -> Report:
    """Read one message (possibly cut at the fetch limit: only the start is needed)."""
    message = BytesParser(policy=compat32).parsebytes(_without_original_body(data))
    key = report_key(message, data)
    status_part = feedback_part = original = None
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status" and status_part is None:
            status_part = part
        elif ctype == "message/feedback-report" and feedback_part is None:
            feedback_part = part
        elif ctype in ("message/rfc822", "text/rfc822-headers") and original is None:
            original = _original_headers(part)
            break  # the returned message's own parts are not the report's
    envelope = [_header_text(message, name) for name in _ENVELOPE_HEADERS]
    original_id = None
    if original is not None:
        envelope += [_header_text(original, name) for name in ("Return-Path", "From", "Sender")]
        original_id = (original.get("Message-ID") or "").strip() or None
    if feedback_part is not None:
        fields = _blocks(feedback_part)
        first = fields[0] if fields else Message()
        envelope.append(_header_text(first, "Original-Mail-From"))
        feedback_type = (first.get("Feedback-Type") or "").strip().lower()
        return Report(key, "complaint" if feedback_type in _COMPLAINTS else "other",
                      "\n".join(envelope), original_id, feedback_type=feedback_type)
    if status_part is not None:
        blocks = _blocks(status_part)
        recipients = tuple(_recipient(b) for b in blocks[1:] if b.get("Action") or b.get("Status"))
        if original_id is None:  # some MTAs name the original only in the headers block
            original_id = _original_id_from_text(message)
        return Report(key, "dsn", "\n".join(envelope), original_id, recipients)
    request = _unsubscribe_request(message)
    if request is not None:
        return Report(key, "unsubscribe", "\n".join(envelope), None, unsubscribe=request)
    return Report(key, "other", "\n".join(envelope), original_id)


_RETURNED = re.compile(rb"(?im)^content-type:\s*(?:message/rfc822|text/rfc822-headers)\b")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _without_original_body(data: bytes) -> bytes:
    """The message up to the end of the returned original's headers. The report's own
    parts come first (RFC 3464 and RFC 5965 put the original last), and of the original
    only its headers are read: not parsing the returned newsletter copy (often 25 KB or
    more) makes reading a DSN several times faster."""
    found = _RETURNED.search(data)
    if found is None:
        return data
    part_head = _BLANK_LINE.search(data, found.end())
    original_head = _BLANK_LINE.search(data, part_head.end()) if part_head else None
    return data if original_head is None else data[:original_head.end()]


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, str):  # not split by the parser (e.g. base64): parse the blocks
        text = payload if part.get("Content-Transfer-Encoding", "").lower() != "base64" else (
            _decoded(part).decode("ascii", "replace"))
        return [HeaderParser(policy=compat32).parsestr(b.strip() + "\n")
                for b in re.split(r"\r?\n\s*\r?\n", text) if b.strip()]
    return []


def _recipient(block: Message) -> RecipientStatus:
    def field(name: str) -> str:
        return " ".join(str(block.get(name) or "").split())

    address = field("Final-Recipient") or field("Original-Recipient")
    return RecipientStatus(address.partition(";")[2].strip() or address, field("Action"),
                           field("Status"), field("Diagnostic-Code"))


def _original_headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        text = payload
        if part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable"):
            text = _decoded(part).decode("utf-8", "replace")
        return HeaderParser(policy=compat32).parsestr(text, headersonly=True)
    return None


def _original_id_from_text(message: Message) -> str | None:
    for part in message.walk():
        if part.get_content_maintype() == "text":
            body = _decoded(part)
            found = _OUR_MESSAGE_ID.search(body[:65536].decode("utf-8", "replace"))
            if found:
                return found.group(0)
    return None


def _decoded(part: Message) -> bytes:
    """A non-multipart part's body with its transfer encoding undone (b"" for others)."""
    body = part.get_payload(decode=True)
    return body if isinstance(body, bytes) else b""


def _header_text(message: Message, name: str) -> str:
    return " ".join(str(v) for v in message.get_all(name) or [])


def _unsubscribe_request(message: Message) -> tuple[int, str] | None:
    """`unsubscribe <id> <token>`, as the List-Unsubscribe mailto: link puts it in the
    Subject (a client may prefix "Re:" or put it in the body instead)."""
    found = _UNSUBSCRIBE.search(_decoded_subject(message))
    if found is None:
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                body = _decoded(part)[:8192]
                found = _UNSUBSCRIBE.search(body.decode("utf-8", "replace"))
                break
    return (int(found.group(1)), found.group(2)) if found else None


def _decoded_subject(message: Message) -> str:
    from email.header import decode_header, make_header

    raw = message.get("Subject") or ""
    try:
        return str(make_header(decode_header(str(raw))))
    except (ValueError, LookupError, UnicodeDecodeError):
        return str(raw)
