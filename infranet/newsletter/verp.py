"""VERP: an envelope sender (MAIL FROM, later the Return-Path) per newsletter delivery.

A bounce goes back to the envelope sender, often without the original message or with
its headers rewritten; when the address itself names the delivery, every bounce can be
matched. With `[bounces]` configured, each delivery's envelope sender is

    <verp_local_part>+<delivery id>-<mac>@<domain of [smtp] from_address>

where `mac` is 10 hex digits of an HMAC (`[security] secret_key`) over the delivery id:
nobody can make up an address that counts a bounce against someone else's delivery.
Hex, because some mail systems change the case of local parts. The mailbox of
`verp_local_part@domain` must receive the `+` variants (subaddressing, on by default in
Postfix with `recipient_delimiter = +`, in Exim and in most hosted mail).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from infranet.context import AppContext
from infranet.newsletter.mime import domain_of, split_from

MAC_HEX = 10
_PURPOSE = b"newsletter.verp\x00"


def enabled(ctx: AppContext) -> bool:
    return ctx.settings.bounces.enabled


def _mac(ctx: AppContext, delivery_id: int) -> str:
    digest = hmac.new(ctx.secret_key, _PURPOSE + str(delivery_id).encode(), hashlib.sha256)
    return digest.hexdigest()[:MAC_HEX]


def sender_for(ctx: AppContext, delivery_id: int) -> str:
    """The envelope sender of one delivery (assumes `enabled(ctx)`)."""
    domain = domain_of(split_from(ctx.settings.smtp.from_address)[1])
    local = ctx.settings.bounces.verp_local_part
    return f"{local}+{delivery_id}-{_mac(ctx, delivery_id)}@{domain}"


def pattern(ctx: AppContext) -> re.Pattern[str]:
    """Finds VERP addresses of this service anywhere in a header's text."""
    local = re.escape(ctx.settings.bounces.verp_local_part)
    return re.compile(rf"(?i)(?<![\w.+-]){local}\+(\d{{1,18}})-([0-9a-f]{{{MAC_HEX}}})@")


def delivery_of(ctx: AppContext, text: str) -> int | None:
    """The delivery id named by a genuine VERP address in `text`; None when there is
    none or its MAC is wrong (a forged or mangled address counts nothing)."""
    for match in pattern(ctx).finditer(text):
        delivery_id = int(match.group(1))
        if hmac.compare_digest(_mac(ctx, delivery_id), match.group(2).lower()):
            return delivery_id
    return None
