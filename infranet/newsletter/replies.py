"""What an SMTP reply (or a DSN's status) says about a delivery: one pure function.

A 5xx answer is not always the recipient's fault. "550 5.1.1 No such user" is a hard
bounce of that address; "550 5.7.26 Unauthenticated email is not accepted (DMARC)" or
"554 5.7.1 Message rejected as spam" says the *sender* is refused, and disabling the
reader for it would punish them for our DKIM key or our reputation. Such refusals count
toward pausing an issue instead (`infranet.newsletter.queue`).

The rule (RFC 3463 enhanced status codes first, the text second):

- 2xx/3xx: accepted; 4xx (or an enhanced code 4.x.x): transient, retried later.
- 5xx with enhanced 5.1.x (address) or 5.2.x (mailbox): the recipient's hard bounce.
- 5xx with enhanced 5.7.x (security/policy), 5.3.x (our message or system) or 5.6.x
  (content): blames the sender.
- otherwise the text decides: words of policy, reputation or authentication ("spam",
  "DMARC", "SPF", "DKIM", "blocklist", "policy", "reputation" ...) blame the sender,
  unless the text also names the mailbox as unknown; anything else is the recipient's.

`classify(code, enhanced, text)` has no state and no I/O, so that a DSN reader (RFC
3464 `Status:` and `Diagnostic-Code:` fields) can reuse it; `split_enhanced(text)`
takes an enhanced code off the front of a reply text.
"""

from __future__ import annotations

import re
from enum import StrEnum


class ReplyKind(StrEnum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"
    RECIPIENT = "recipient"  # a hard bounce: the address or mailbox is the problem
    SENDER = "sender"  # the server refuses us (policy, authentication, reputation, content)


_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_SENDER_WORDS = re.compile(
    r"spam|dmarc|\bspf\b|dkim|authenticat|unauthenticated|block ?list|black ?list|"
    r"\bblocked\b|\blisted\b|spamhaus|reputation|\bpolicy\b|not authori[sz]ed|"
    r"relay(ing)? (access )?denied|rate limit|too many|message content|virus|"
    r"sender (address )?rejected|rejected by policy", re.IGNORECASE)
_RECIPIENT_WORDS = re.compile(
    r"no such (user|mailbox|recipient)|user unknown|unknown (user|recipient|mailbox)|"
    r"does not exist|doesn't exist|mailbox (unavailable|not found|disabled)|"
    r"invalid (recipient|mailbox|address)|recipient (address )?rejected: (user|unknown)|"
    r"address rejected", re.IGNORECASE)


def split_enhanced(text: str) -> tuple[str | None, str]:
    """("5.7.1", "rest of the text") from "5.7.1 rest of the text"; (None, text) without one."""
    match = _ENHANCED.match(text or "")
    if match is None:
        return None, text or ""
    return ".".join(match.groups()), (text or "")[match.end():].strip()


def classify(code: int, enhanced: str | None, text: str) -> ReplyKind:
    """The kind of an SMTP reply `code` with its enhanced status code (or None) and text.

    `enhanced` may also be left None with the code at the start of `text` ("5.7.1 ...").
    A code of 0 (no reply at all) with a DSN's enhanced status is judged by the status.
    """
    if enhanced is None:
        enhanced, text = split_enhanced(text)
    text = text or ""
    klass = enhanced.split(".", 1)[0] if enhanced else ""
    if 200 <= code < 400 or (code == 0 and klass == "2"):
        return ReplyKind.ACCEPTED
    if 400 <= code < 500 or (code == 0 and klass == "4") or (code >= 500 and klass == "4"):
        return ReplyKind.TRANSIENT
    if code and not 500 <= code < 600:
        return ReplyKind.TRANSIENT  # not an SMTP reply code we know: never a bounce
    subject = enhanced.split(".")[1] if enhanced and klass == "5" else ""
    if subject in ("1", "2"):
        return ReplyKind.RECIPIENT
    if subject in ("7", "3", "6"):
        return ReplyKind.SENDER
    if _SENDER_WORDS.search(text) and not _RECIPIENT_WORDS.search(text):
        return ReplyKind.SENDER
    return ReplyKind.RECIPIENT
