"""The contact details an organisation chose to publish on the site and in event pages.

Every public page asks here rather than reading `Organisation` fields itself, so one
place decides what the public may see of an organisation."""

from __future__ import annotations

from dataclasses import dataclass

from infranet.storage.models import Organisation


@dataclass(frozen=True)
class PublicContacts:
    email: str | None
    phone: str | None
    website: str | None


def published_contacts(org: Organisation) -> PublicContacts:
    return PublicContacts(email=org.contact_email, phone=org.phone, website=org.website)
