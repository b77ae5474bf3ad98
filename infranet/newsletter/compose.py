"""Turns an issue and a subscriber into a ready message (and the confirmation e-mail)."""

from __future__ import annotations

import html as html_lib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import select

from infranet.context import AppContext
from infranet.i18n import t
from infranet.newsletter import content as content_mod
from infranet.newsletter import tokens, verp
from infranet.newsletter.mime import (
    DkimKey,
    Envelope,
    MessageFactory,
    PartTemplate,
    clean_header_text,
    split_from,
)
from infranet.newsletter.render import Renderer
from infranet.storage.models import NewsletterIssue

# Prepared parts kept per (issue, language, selection): ~20 KB each, about a thousand for a
# typical issue of 10,000 readers.
SEGMENT_CACHE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Segment:
    """The prepared 8bit text and HTML parts of one selection of an issue."""

    text: PartTemplate
    html: PartTemplate


@dataclass(frozen=True)
class SubscriberRef:
    """The fields of a subscriber that links and personalisation need."""

    id: int
    email: str
    token_version: int
    language: str = "pl"
    districts: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: Any) -> SubscriberRef:
        get: Callable[[str], Any] = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
        return cls(get("id"), get("email"), get("token_version"), get("language") or "pl",
                   tuple(get("districts") or ()), tuple(get("categories") or ()))


def list_id(ctx: AppContext) -> str:
    configured = ctx.settings.newsletter.list_id
    if configured:
        return configured
    host = urlsplit(ctx.settings.http.public_base_url).hostname or "localhost"
    return f"newsletter.{host}"


def load_dkim(ctx: AppContext) -> DkimKey | None:
    smtp = ctx.settings.smtp
    if smtp.dkim_selector and smtp.dkim_domain and smtp.dkim_key_file:
        return DkimKey.load(smtp.dkim_selector, smtp.dkim_domain, smtp.dkim_key_file)
    return None


def subject_for(ctx: AppContext, content: dict[str, Any], lang: str) -> str:
    """One clean line (no control characters, at most 150 characters)."""
    return clean_header_text(t(lang, "newsletter.subject", title=content_mod.newsletter_title(ctx, lang),
             period=content_mod.period_label(content, ctx, lang)))


class Composer:
    """Caches per issue and language what every message of it shares."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.renderer = Renderer(ctx)
        self.matcher = content_mod.Matcher(ctx.region)
        self.dkim = load_dkim(ctx)
        self._contents: dict[int, dict[str, Any]] = {}
        self._factories: dict[tuple[int | None, str], MessageFactory] = {}
        self._selections: dict[Any, content_mod.Selection] = {}
        self._segments: dict[tuple[int, str, content_mod.Selection], Segment | None] = {}
        self._segment_bytes = 0
        settings = ctx.settings
        self.unsubscribe_address = (settings.newsletter.unsubscribe_address
                                    or split_from(settings.smtp.from_address)[1])

    async def content(self, issue_id: int) -> dict[str, Any]:
        found = self._contents.get(issue_id)
        if found is None:
            # A read: on SQLite it need not queue behind the sender's own status writes.
            async with self.ctx.db.read() as session:
                found = await session.scalar(
                    select(NewsletterIssue.content).where(NewsletterIssue.id == issue_id))
            if found is None:
                raise LookupError(f"issue {issue_id} does not exist")
            self._contents[issue_id] = found
        return found

    def factory(self, issue_id: int | None, content: dict[str, Any], lang: str) -> MessageFactory:
        key = (issue_id, lang)
        found = self._factories.get(key)
        if found is None:
            s = self.ctx.settings
            found = MessageFactory(from_address=s.smtp.from_address,
                                   subject=subject_for(self.ctx, content, lang),
                                   reply_to=s.smtp.reply_to, list_id=list_id(self.ctx),
                                   list_name=s.newsletter.title, dkim=self.dkim)
            self._factories[key] = found
        return found

    def selection(self, issue_id: int | None, content: dict[str, Any],
                  subscriber: SubscriberRef) -> content_mod.Selection:
        """What this subscriber's preferences select (cached: few distinct preference sets)."""
        key = (issue_id, subscriber.districts, subscriber.categories)
        found = self._selections.get(key) if issue_id is not None else None
        if found is None:
            found = content_mod.select_for(content, self.matcher, subscriber.districts,
                                           subscriber.categories)
            if issue_id is not None:
                if len(self._selections) > 20000:
                    self._selections.clear()
                self._selections[key] = found
        return found

    def personal_links(self, subscriber: SubscriberRef) -> dict[str, str]:
        base = f"{self.ctx.settings.http.public_base_url}/newsletter"
        unsubscribe = tokens.make_token(self.ctx, "unsubscribe", subscriber)
        preferences = tokens.make_token(self.ctx, "preferences", subscriber)
        return {
            "unsubscribe": f"{base}/unsubscribe?s={subscriber.id}&t={unsubscribe}",
            "preferences": f"{base}/preferences?s={subscriber.id}&t={preferences}",
            "mailto": f"mailto:{self.unsubscribe_address}?subject="
                      f"{quote(f'unsubscribe {subscriber.id} {unsubscribe}')}",
        }

    def test_links(self) -> dict[str, str]:
        """Links of a test copy (`preview --send-test`): a page saying it is a test copy.
        A test copy shows a real reader's selection but must never carry that reader's
        signed links: the tester's mail provider would act on them (a List-Unsubscribe
        one-click POST unsubscribed the real subscriber)."""
        page = f"{self.ctx.settings.http.public_base_url}/newsletter/test-copy"
        return {"unsubscribe": page, "preferences": page, "mailto": ""}

    def render_for(self, issue_id: int | None, content: dict[str, Any], subscriber: SubscriberRef,
                   selection: content_mod.Selection | None = None,
                   links: dict[str, str] | None = None) -> tuple[str, str] | None:
        """Personalised (text, html), or None when nothing matches the preferences."""
        if selection is None:
            selection = self.selection(issue_id, content, subscriber)
        if selection.empty:
            return None
        links = links or self.personal_links(subscriber)
        return self.renderer.issue_variant(
            issue_id, content, selection, subscriber.language,
            personal={"unsubscribe": links["unsubscribe"], "preferences": links["preferences"],
                      "email": subscriber.email})

    def build(self, issue_id: int | None, content: dict[str, Any], subscriber: SubscriberRef,
              *, delivery_id: int | None = None, recipient: str | None = None,
              selection: content_mod.Selection | None = None,
              eightbit: bool = False, test_copy: bool = False) -> Envelope | None:
        """One ready message; `test_copy`: with inert links and a "[TEST]" subject."""
        links = self.test_links() if test_copy else self.personal_links(subscriber)
        parts = self.render_for(issue_id, content, subscriber, selection, links)
        if parts is None:
            return None
        factory = self.factory(issue_id, content, subscriber.language)
        if test_copy:
            s = self.ctx.settings
            factory = MessageFactory(
                from_address=s.smtp.from_address, reply_to=s.smtp.reply_to,
                subject="[TEST] " + subject_for(self.ctx, content, subscriber.language),
                list_id=list_id(self.ctx), list_name=s.newsletter.title, dkim=self.dkim)
        hint = f"{issue_id}.{delivery_id}." if delivery_id else ""
        return self._verp(factory.build(
            recipient=recipient or subscriber.email, text=parts[0], html=parts[1],
            unsubscribe_https=links["unsubscribe"], unsubscribe_mailto=links["mailto"] or None,
            message_id=factory.new_message_id(hint), eightbit=eightbit), delivery_id)

    def _verp(self, envelope: Envelope | None, delivery_id: int | None) -> Envelope | None:
        """With `[bounces]` configured, a delivery's envelope sender names it (see
        `verp`), so that a bounce arriving later by mail is matched to it."""
        if envelope is None or not delivery_id or not verp.enabled(self.ctx):
            return envelope
        return replace(envelope, sender=verp.sender_for(self.ctx, delivery_id))

    async def issue_message(self, issue_id: int, subscriber: dict[str, Any], delivery_id: int,
                            *, eightbit: bool = False) -> Envelope | None:
        """The sender's message for one delivery (None: nothing matches the preferences).

        With 8BITMIME (the usual case) the message is filled into the parts prepared
        for its segment (see `segment`): per message, only the links are signed and
        the header block encoded. Otherwise, or when a value does not fit 8bit,
        `build()` renders and encodes it whole; both give the same message.
        """
        content = self._contents.get(issue_id) or await self.content(issue_id)
        ref = SubscriberRef.of(subscriber)
        selection = self.selection(issue_id, content, ref)
        if selection.empty:
            return None
        if eightbit:
            segment = self.segment(issue_id, content, selection, ref.language)
            if segment is not None:
                envelope = self._fill(issue_id, content, ref, delivery_id, segment)
                if envelope is not None:
                    return envelope
        return self.build(issue_id, content, ref, delivery_id=delivery_id, selection=selection,
                          eightbit=eightbit)

    def segment(self, issue_id: int, content: dict[str, Any], selection: content_mod.Selection,
                lang: str) -> Segment | None:
        """The 8bit parts of everyone who gets `selection` in `lang`, prepared once.

        10,000 readers of a typical issue share about a thousand selections, so most
        messages reuse a segment. The cache is bounded by size (SEGMENT_CACHE_BYTES) and
        simply dropped when full: a segment costs about as much as one message to remake.
        None (also cached) when the issue's text cannot go as 8bit (a line too long).
        """
        key = (issue_id, lang, selection)
        if key in self._segments:
            return self._segments[key]
        text_parts, html_parts = self.renderer.issue(issue_id, content, lang).parts(selection)
        text, html = PartTemplate.make(text_parts), PartTemplate.make(html_parts)
        found = Segment(text, html) if text is not None and html is not None else None
        size = found.text.size + found.html.size if found is not None else 0
        if self._segment_bytes + size > SEGMENT_CACHE_BYTES:
            self._segments.clear()
            self._segment_bytes = 0
        self._segments[key] = found
        self._segment_bytes += size
        return found

    def _fill(self, issue_id: int, content: dict[str, Any], ref: SubscriberRef, delivery_id: int,
              segment: Segment) -> Envelope | None:
        links = self.personal_links(ref)
        personal = {"unsubscribe": links["unsubscribe"], "preferences": links["preferences"],
                    "email": ref.email}
        factory = self.factory(issue_id, content, ref.language)
        return self._verp(factory.build_filled(
            recipient=ref.email, text=segment.text, html=segment.html, text_values=personal,
            html_values={name: html_lib.escape(value) for name, value in personal.items()},
            unsubscribe_https=links["unsubscribe"], unsubscribe_mailto=links["mailto"],
            message_id=factory.new_message_id(f"{issue_id}.{delivery_id}.")), delivery_id)

    def preferences_link(self, subscriber: SubscriberRef) -> Envelope:
        """To a confirmed reader who filled the sign-up form again: their preferences
        and unsubscribe links (transactional, like the confirmation)."""
        s = self.ctx.settings
        lang = subscriber.language
        links = self.personal_links(subscriber)
        text = t(lang, "newsletter.again_body", title=s.newsletter.title,
                 preferences=links["preferences"], unsubscribe=links["unsubscribe"],
                 privacy=f"{s.http.public_base_url}/newsletter/privacy")
        factory = MessageFactory(from_address=s.smtp.from_address,
                                 subject=t(lang, "newsletter.again_subject", title=s.newsletter.title),
                                 reply_to=s.smtp.reply_to, bulk=False, dkim=self.dkim)
        return factory.build(recipient=subscriber.email, text=text, html=None)

    def confirmation(self, subscriber: SubscriberRef) -> Envelope:
        """The double opt-in e-mail: transactional, so no bulk or list headers."""
        s = self.ctx.settings
        lang = subscriber.language
        days = s.newsletter.confirm_ttl_days
        url = tokens.link(self.ctx, "confirm", subscriber)
        params = {"confirm_url": url, "days": days}
        text = self.renderer.render("confirm.txt", lang, **params)
        html = self.renderer.html_email("confirm.html", lang, **params)
        factory = MessageFactory(from_address=s.smtp.from_address,
                                 subject=t(lang, "newsletter.confirm_subject", title=s.newsletter.title),
                                 reply_to=s.smtp.reply_to, bulk=False, dkim=self.dkim)
        return factory.build(recipient=subscriber.email, text=text, html=html)
