"""The network's base of experts and trainers: people its members may call on.

A member adds a person (name, topics, the districts they serve, the languages they work
in, how to reach them) only with that person's consent, recorded with the row: when, by
which member, and which version of the consent text (`CONSENT_VERSION`, the catalog
message `experts.consent_text`) the member showed them. The base is for the network's
approved members only (the CLI operator and the service act as admins); pending and
blocked members and strangers are refused. Nothing of it is public: the insight step
gets counts per powiat and per topic (`expert_counts`), never a person.

A person may ask to be forgotten: `forget_expert` deletes their row whole (no field is
kept or blanked in place) and leaves an audit line that names the row's number only, as
every audit line of this module does. `export_expert` is the RODO access request: what
is held about the person.

Each field is cleaned by its own rule in `expert_fields`; search (`search_experts`) is
in `expert_search`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import NotFound, PermissionDenied, ValidationFailed
from infranet.network.expert_fields import (
    clean_contact,
    clean_districts,
    clean_languages,
    clean_topics,
    set_districts,
    set_languages,
    set_topics,
)
from infranet.network.members import secretariat_id
from infranet.region import fold
from infranet.storage import audit
from infranet.storage.actors import Actor
from infranet.storage.models import AuditLog, Expert, Member, Organisation
from infranet.validation import clean_text

# The consent text members show the person (catalog message CONSENT_MESSAGE); a new
# wording gets a new version, so that every row says which one its person agreed to.
CONSENT_VERSION = "2026-12"
CONSENT_MESSAGE = "experts.consent_text"

NAME_MAX, NOTE_MAX = 200, 1000


@dataclass
class ExpertInput:
    """What a member (or the CLI) gives for a new expert. Lists may be one text with
    commas; `consent_version` is the version of the text the person was shown (None: the
    current one); `consent_by_member_id` names the member who recorded the consent when
    the CLI adds (a member adding in the bot is that member)."""

    name: str
    topics: Sequence[str] | str
    districts: Sequence[str] | str
    languages: Sequence[str] | str = ("pl",)
    email: str | None = None
    phone: str | None = None
    note: str | None = None
    consent: bool = False
    consent_version: str | None = None
    consent_by_member_id: int | None = None


@dataclass
class ExpertChanges:
    """An edit: None leaves a field as it is; "" removes the e-mail, phone or note."""

    name: str | None = None
    topics: Sequence[str] | str | None = None
    districts: Sequence[str] | str | None = None
    languages: Sequence[str] | str | None = None
    email: str | None = None
    phone: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ExpertCounts:
    """Counts only, for the insight step: experts available in each powiat (serving it, or
    the subregion or region it lies in), and experts per topic (told apart by fold, named by
    the most common spelling)."""

    per_powiat: dict[str, int]
    per_topic: dict[str, int] = field(default_factory=dict)


# --- who may ----------------------------------------------------------------------


def require_member(actor: Actor) -> Member | None:
    """The approved member acting, or None for the CLI operator and the service."""
    if actor.kind in ("cli", "system"):
        return None
    return actor.require_approved()


def can_manage(actor: Actor, expert: Expert) -> bool:
    """Edit and forget: the member who added the person, or an admin."""
    if actor.is_admin:
        return True
    member = actor.member
    return (member is not None and member.is_approved
            and expert.added_by_member_id is not None and expert.added_by_member_id == member.id)


def _require_manage(actor: Actor, expert: Expert) -> None:
    require_member(actor)
    if not can_manage(actor, expert):
        raise PermissionDenied("experts.not_yours")


# --- adding, editing, forgetting -------------------------------------------------------


async def _same_email(session: AsyncSession, email: str | None, but: int | None = None) -> None:
    if email is None:
        return
    query = select(Expert.id).where(func.lower(Expert.email) == email.lower())
    if but is not None:
        query = query.where(Expert.id != but)
    existing = await session.scalar(query.limit(1))
    if existing is not None:
        raise ValidationFailed("experts.duplicate", field="email", value=email, id=existing)


async def _recorder(session: AsyncSession, member: Member | None, data: ExpertInput) -> Member:
    """Who recorded the consent: the member adding, or (CLI) the approved member named."""
    if member is not None:
        return member
    if data.consent_by_member_id is None:
        raise ValidationFailed("experts.consent_by_needed", field="consent_by")
    found = await session.get(Member, data.consent_by_member_id)
    if found is None or not found.is_approved:
        raise ValidationFailed("experts.consent_by_unknown", field="consent_by",
                               value=data.consent_by_member_id)
    return found


async def add_expert(session: AsyncSession, ctx: AppContext, actor: Actor, data: ExpertInput) -> Expert:
    """A new expert, for approved members (and the CLI, as the secretariat); every field is
    checked first, each refusal naming its field, then the consent: given, and to the
    current text."""
    member = require_member(actor)
    name = clean_text(data.name, "person_name", NAME_MAX, required=True) or ""
    topics = clean_topics(data.topics)
    districts = clean_districts(ctx, data.districts)
    languages = clean_languages(data.languages)
    email, phone = clean_contact(data.email, data.phone)
    note = clean_text(data.note, "note", NOTE_MAX, multiline=True)
    if not data.consent:
        raise ValidationFailed("experts.no_consent")
    if (data.consent_version or CONSENT_VERSION) != CONSENT_VERSION:
        raise ValidationFailed("experts.consent_outdated", version=CONSENT_VERSION)
    recorder = await _recorder(session, member, data)
    await _same_email(session, email)
    organisation_id = member.organisation_id if member is not None else await secretariat_id(session)
    now = ctx.now()
    row = Expert(name=name, email=email, phone=phone, note=note,
                 added_by_member_id=member.id if member is not None else None,
                 organisation_id=organisation_id, consent_at=now, consent_by=recorder.id,
                 consent_text_version=CONSENT_VERSION, created_at=now, updated_at=now)
    set_topics(row, topics)
    set_districts(row, districts)
    set_languages(row, languages)
    session.add(row)
    await session.flush()
    # Never the person's name or contact in the audit log: it outlives a `forget`.
    await audit.record(session, actor, "expert.add", "expert", row.id, consent_version=CONSENT_VERSION)
    return row


async def get_expert(session: AsyncSession, actor: Actor, expert_id: int) -> Expert:
    """One expert, for members only (NotFound also for an id out of range)."""
    require_member(actor)
    row = await session.get(Expert, expert_id) if 0 < expert_id < 2**31 else None
    if row is None:
        raise NotFound("experts.not_found", id=expert_id)
    return row


async def update_expert(session: AsyncSession, ctx: AppContext, actor: Actor, expert_id: int,
                        changes: ExpertChanges) -> Expert:
    """Edit by the member who added the person or an admin; the contact stays complete."""
    row = await get_expert(session, actor, expert_id)
    _require_manage(actor, row)
    changed: list[str] = []
    if changes.name is not None:
        row.name = clean_text(changes.name, "person_name", NAME_MAX, required=True) or row.name
        changed.append("name")
    if changes.topics is not None:
        set_topics(row, clean_topics(changes.topics))
        changed.append("topics")
    if changes.districts is not None:
        set_districts(row, clean_districts(ctx, changes.districts))
        changed.append("districts")
    if changes.languages is not None:
        set_languages(row, clean_languages(changes.languages))
        changed.append("languages")
    if changes.email is not None or changes.phone is not None:
        email = row.email if changes.email is None else changes.email
        phone = row.phone if changes.phone is None else changes.phone
        row.email, row.phone = clean_contact(email, phone)
        await _same_email(session, row.email, but=row.id)
        changed.append("contact")
    if changes.note is not None:
        row.note = clean_text(changes.note, "note", NOTE_MAX, multiline=True)
        changed.append("note")
    row.updated_at = ctx.now()
    await session.flush()
    await audit.record(session, actor, "expert.edit", "expert", row.id, fields=changed)
    return row


async def _by_key(session: AsyncSession, key: int | str) -> list[Expert]:
    """Experts by id ("12", "#12") or by e-mail address (case ignored)."""
    text = str(key).strip().removeprefix("#")
    if text.isascii() and text.isdigit():
        number = int(text)
        row = await session.get(Expert, number) if 0 < number < 2**31 else None
        return [row] if row is not None else []
    if "@" not in text or len(text) > 320:
        raise ValidationFailed("experts.bad_key", value=text[:100])
    return list((await session.scalars(select(Expert).where(
        func.lower(Expert.email) == text.lower()).order_by(Expert.id))).all())


async def forget_expert(session: AsyncSession, ctx: AppContext, actor: Actor,
                        key: int | str) -> list[int]:
    """Delete the person's rows whole (by id, or every row with the e-mail address), on
    their request; the member who added them or an admin. Returns the ids deleted."""
    require_member(actor)
    rows = await _by_key(session, key)
    if not rows:
        raise NotFound("experts.not_found_key", what=str(key)[:100])
    for row in rows:
        _require_manage(actor, row)
    ids = [row.id for row in rows]
    await session.execute(delete(Expert).where(Expert.id.in_(ids)))
    for expert_id in ids:
        await audit.record(session, actor, "expert.forget", "expert", expert_id)
    return ids


async def export_expert(session: AsyncSession, ctx: AppContext, actor: Actor,
                        key: int | str) -> list[dict[str, Any]]:
    """What the base holds about a person (a RODO access request): admins only."""
    actor.require_admin()
    rows = await _by_key(session, key)
    if not rows:
        raise NotFound("experts.not_found_key", what=str(key)[:100])
    member_ids = {i for r in rows for i in (r.added_by_member_id, r.consent_by) if i is not None}
    names: dict[int, str] = {}
    if member_ids:
        names = {i: n for i, n in (await session.execute(
            select(Member.id, Member.display_name).where(Member.id.in_(member_ids))))}
    org_ids = {r.organisation_id for r in rows if r.organisation_id is not None}
    orgs: dict[int, str] = {}
    if org_ids:
        orgs = {i: n for i, n in (await session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(org_ids))))}
    out = []
    for row in rows:
        history = (await session.execute(select(AuditLog.at, AuditLog.action).where(
            AuditLog.entity == "expert", AuditLog.entity_id == str(row.id)).order_by(AuditLog.id))).all()
        out.append({
            "id": row.id, "name": row.name, "topics": row.topics,
            "districts": [_district_name(ctx, s) for s in row.districts],
            "languages": row.languages, "email": row.email, "phone": row.phone, "note": row.note,
            "added_by": names.get(row.added_by_member_id or 0),
            "organisation": orgs.get(row.organisation_id or 0),
            "consent_at": _iso(row.consent_at), "consent_by": names.get(row.consent_by or 0),
            "consent_text_version": row.consent_text_version,
            "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
            "history": [{"at": _iso(at), "action": action} for at, action in history],
        })
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _district_name(ctx: AppContext, slug: str) -> str:
    district = ctx.region.by_slug.get(slug)
    return district.name if district is not None else slug


def district_names(ctx: AppContext, expert: Expert) -> list[str]:
    return [_district_name(ctx, s) for s in expert.districts]


# --- counts for the insight step ----------------------------------------------------------


async def expert_counts(session: AsyncSession, ctx: AppContext) -> ExpertCounts:
    """How many experts are available per powiat and per topic (counts only, no person).
    Topics are counted by their fold and named by their most common spelling, lower case."""
    per_powiat = {p.slug: 0 for p in ctx.region.powiaty}
    per_topic: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    rows = await session.execute(select(Expert.districts, Expert.topics))
    for slugs, topics in rows:
        served = [ctx.region.by_slug[s] for s in slugs or [] if s in ctx.region.by_slug]
        for powiat in ctx.region.powiaty:
            if any(d.contains(powiat) for d in served):
                per_powiat[powiat.slug] += 1
        folds = {fold(topic): topic.lower() for topic in topics or [] if fold(topic)}
        per_topic.update(folds.keys())
        for key, spelling in folds.items():
            spellings.setdefault(key, Counter())[spelling] += 1
    return ExpertCounts(per_powiat, {spellings[key].most_common(1)[0][0]: count
                                     for key, count in per_topic.most_common()})
