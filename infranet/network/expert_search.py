"""Search in the base of experts: by topic, district and language, for members only.

Topics are compared by their folded keys with LIKE on both engines (region.fold: case
and diacritics optional) with the common Polish endings cut off, so "ekonomii
społecznej" finds "ekonomia społeczna"; a district finds the experts serving it, the
subregion or region around it, or a powiat inside it. Apart from `experts`, which adds,
edits and forgets, because reading the base needs none of that.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.network.expert_fields import QUERY_MAX, language_code
from infranet.network.experts import require_member
from infranet.region import fold
from infranet.storage.actors import Actor
from infranet.storage.models import Expert
from infranet.validation import plain_text

SEARCH_LIMIT, SEARCH_MAX = 20, 50


@dataclass(frozen=True)
class SearchResult:
    experts: list[Expert]
    more: bool  # more matched than were returned


def _stem(word: str) -> str:
    """A folded word without its ending, roughly: Polish declension changes the last one or
    two letters ("ekonomii" / "ekonomia", "społecznej" / "społeczna", "szkoleń" / "szkolenia")."""
    cut = 0 if len(word) < 5 else 1 if len(word) < 7 else 2
    return word[:len(word) - cut]


def _topic_filter(topic: str) -> list[ColumnElement[bool]]:
    text = plain_text(topic)
    if len(text) > QUERY_MAX:
        raise ValidationFailed("error.too_long", field="topics", length=len(text), limit=QUERY_MAX)
    words = list(dict.fromkeys(fold(text).split()))[:8]
    return [Expert.topics_folded.like(f"%{_stem(w)}%") for w in words]


def _district_filter(ctx: AppContext, district: str) -> ColumnElement[bool]:
    text = plain_text(district)
    if len(text) > QUERY_MAX:
        raise ValidationFailed("error.too_long", field="district", length=len(text), limit=QUERY_MAX)
    found = ctx.region.find(text)
    around = [found, *found.ancestors, *found.descendants]
    return or_(*(Expert.districts_key.like(f"%|{d.slug}|%") for d in around))


async def search_experts(session: AsyncSession, ctx: AppContext, actor: Actor, *,
                         topic: str | None = None, district: str | None = None,
                         language: str | None = None, limit: int = SEARCH_LIMIT,
                         offset: int = 0) -> SearchResult:
    """Experts matching every criterion given (none: all), oldest first, at most `limit`
    (capped at SEARCH_MAX); members only."""
    require_member(actor)
    conditions: list[ColumnElement[bool]] = []
    if topic and topic.strip():
        conditions.extend(_topic_filter(topic))
    if district and district.strip():
        conditions.append(_district_filter(ctx, district))
    if language and language.strip():
        code = language_code(plain_text(language)[:QUERY_MAX])
        if code is None:
            raise ValidationFailed("experts.bad_language", field="languages", value=language.strip()[:40])
        conditions.append(Expert.languages_key.like(f"%|{code}|%"))
    limit = max(1, min(limit, SEARCH_MAX))
    offset = max(0, min(offset, 100_000))
    query = select(Expert).order_by(Expert.id).limit(limit + 1).offset(offset)
    if conditions:
        query = query.where(and_(*conditions))
    rows = list((await session.scalars(query)).all())
    return SearchResult(rows[:limit], len(rows) > limit)


async def experts_added_by(session: AsyncSession, actor: Actor, *, limit: int = SEARCH_MAX) -> list[Expert]:
    """The experts the acting member added (to edit or forget them)."""
    member = require_member(actor)
    if member is None:
        return []
    return list((await session.scalars(select(Expert).where(
        Expert.added_by_member_id == member.id).order_by(Expert.id).limit(limit))).all())
