"""The contact details an organisation chose to publish on the site and in event pages.

Every public page asks here rather than reading `Organisation` fields itself, so one
place decides what the public may see of an organisation: its website always (its own
public page), its e-mail and phone only when the organisation chose to publish them
(`publish_email`, `publish_phone`; off until chosen, see migration 0020). The choice is
made here too (`set_publication`), by the organisation's members or an admin.

Public outputs besides the site ask here too: the JSON API, the ICS feeds, the bot's
directory for anyone who is not an approved member, the newsletter. Member-only outputs
(conflict notices, referrals) keep every contact: members cooperate and need them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import NotFound
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import Organisation
from infranet.storage.types import utcnow


@dataclass(frozen=True)
class PublicContacts:
    email: str | None
    phone: str | None
    website: str | None


class Contacts(Protocol):
    """An organisation as a row or a small record (`infranet.calendar.summary.Organiser`)."""

    @property
    def contact_email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def website(self) -> str | None: ...
    @property
    def publish_email(self) -> bool: ...
    @property
    def publish_phone(self) -> bool: ...


def published(email: str | None, phone: str | None, website: str | None, *,
              publish_email: bool, publish_phone: bool) -> PublicContacts:
    """The rule itself, over plain values (the feeds read plain columns)."""
    return PublicContacts(email=email if publish_email else None,
                          phone=phone if publish_phone else None, website=website)


def published_contacts(org: Contacts) -> PublicContacts:
    return published(org.contact_email, org.phone, org.website,
                     publish_email=bool(org.publish_email), publish_phone=bool(org.publish_phone))


async def set_publication(session: AsyncSession, actor: Actor, org_id: int, *,
                          email: bool | None = None, phone: bool | None = None,
                          ctx: AppContext | None = None) -> Organisation:
    """Publish (True) or hide (False) the organisation's e-mail and/or phone on the site;
    None leaves that choice as it is. Recorded in the audit log, as consent should be.

    A change moves `organisations.updated_at`, which is part of the feeds' version, so every
    instance rebuilds its feeds; with `ctx`, this process's caches (feeds, pages, the bot's
    memory) forget at once rather than within their recheck interval."""
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound("error.not_found.organisation", id=org_id)
    actor.require_org(org.id)
    changed = ((email is not None and email != org.publish_email)
               or (phone is not None and phone != org.publish_phone))
    if email is not None:
        org.publish_email = email
    if phone is not None:
        org.publish_phone = phone
    if changed:
        org.updated_at = utcnow()  # explicit: the feeds' version reads it
        if ctx is not None:
            ctx.changes.events.changing(session)  # feeds and event pages show the contacts
            ctx.changes.people.changing(session)  # the directory reads them
    await session.flush()
    await audit.record(session, actor, "org.publish_contacts", "organisation", org.id,
                       email=org.publish_email, phone=org.publish_phone)
    return org
