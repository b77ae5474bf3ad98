"""Signed links for subscribers: confirm, preferences, unsubscribe.

A token is an HMAC (`[security] secret_key`) over the purpose, the subscriber's
id, address and token version: it cannot be guessed, is useless for another
address or another purpose, and stops working once `token_version` is bumped
(unsubscribe, forget, re-subscription).
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlencode

from infranet.context import AppContext
from infranet.security import sign, verify


class Subscriber(Protocol):
    """What a link is made from: a subscriber row, or the few fields of one that the
    newsletter's sender keeps per copy (`compose.SubscriberRef`)."""

    @property
    def id(self) -> int: ...
    @property
    def email(self) -> str: ...
    @property
    def token_version(self) -> int: ...

PURPOSES = ("confirm", "preferences", "unsubscribe")


def _payload(subscriber_id: int, email: str, version: int) -> str:
    return f"{subscriber_id}:{email}:{version}"


def make_token(ctx: AppContext, purpose: str, subscriber: Subscriber, *,
               version: int | None = None) -> str:
    assert purpose in PURPOSES
    v = subscriber.token_version if version is None else version
    return sign(ctx.secret_key, f"newsletter.{purpose}", _payload(subscriber.id, subscriber.email, v))


def check_token(ctx: AppContext, purpose: str, subscriber: Subscriber, token: str, *,
                version: int | None = None) -> bool:
    v = subscriber.token_version if version is None else version
    return verify(ctx.secret_key, f"newsletter.{purpose}",
                  _payload(subscriber.id, subscriber.email, v), token or "")


def base_url(ctx: AppContext) -> str:
    return ctx.settings.http.public_base_url


def link(ctx: AppContext, purpose: str, subscriber: Subscriber) -> str:
    """An absolute https link (on `[http] public_base_url`) for the purpose."""
    query = urlencode({"s": subscriber.id, "t": make_token(ctx, purpose, subscriber)})
    return f"{base_url(ctx)}/newsletter/{purpose}?{query}"


