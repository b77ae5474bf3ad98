"""The contact details an organisation chose to publish on the site and in event pages.

Every public page asks here rather than reading `Organisation` fields itself, so one
place decides what the public may see of an organisation: its website always (its own
public page), its e-mail and phone only when the organisation chose to publish them
(`publish_email`, `publish_phone`; off until chosen, see migration 0020). The choice is
made here too (`set_publication`), by the organisation's members or an admin."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.errors import NotFound
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import Organisation


@dataclass(frozen=True)
class PublicContacts:
    email: str | None
    phone: str | None
    website: str | None


def published_contacts(org: Organisation) -> PublicContacts:
    return PublicContacts(email=org.contact_email if org.publish_email else None,
                          phone=org.phone if org.publish_phone else None,
                          website=org.website)


async def set_publication(session: AsyncSession, actor: Actor, org_id: int, *,
                          email: bool | None = None, phone: bool | None = None) -> Organisation:
    """Publish (True) or hide (False) the organisation's e-mail and/or phone on the site;
    None leaves that choice as it is. Recorded in the audit log, as consent should be."""
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound("error.not_found.organisation", id=org_id)
    actor.require_org(org.id)
    if email is not None:
        org.publish_email = email
    if phone is not None:
        org.publish_phone = phone
    await session.flush()
    await audit.record(session, actor, "org.publish_contacts", "organisation", org.id,
                       email=org.publish_email, phone=org.publish_phone)
    return org
