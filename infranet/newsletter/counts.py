"""The newsletter's reach, counted for the network's indicators and yearly evaluation
(`infranet.insight` reads these). Counts only: no address leaves this module, and
nothing here knows about opens or clicks, which the newsletter never tracks."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.storage.models import (
    BounceReport,
    Delivery,
    DeliveryStatus,
    NewsletterIssue,
    Subscriber,
    SubscriberStatus,
)


async def subscribers_by_areas(session: AsyncSession) -> Counter[tuple[str, ...]]:
    """Confirmed subscribers per the areas they chose (district slugs; () = everything)."""
    found: Counter[tuple[str, ...]] = Counter()
    rows = await session.execute(
        select(cast(Subscriber.districts, String), func.count())
        .where(Subscriber.status == SubscriberStatus.CONFIRMED)
        .group_by(cast(Subscriber.districts, String)))
    for areas, count in rows:
        slugs = json.loads(areas) if areas else []
        found[tuple(sorted(str(s) for s in slugs))] += count
    return found


@dataclass(frozen=True)
class Reach:
    subscribers: int  # confirmed now
    joined: int  # confirmed in the period
    left: int  # unsubscribed in the period
    issues: int  # issues built in the period
    delivered: int  # messages handed to the mail server in the period
    failed: int  # messages given up on in the period (issues of the period)
    hard_bounces: int  # bounce reports read in the period that said the address is gone


async def reach(session: AsyncSession, start: datetime, end: datetime) -> Reach:
    subscribers = await session.scalar(select(func.count()).select_from(Subscriber).where(
        Subscriber.status == SubscriberStatus.CONFIRMED))
    joined = await session.scalar(select(func.count()).select_from(Subscriber).where(
        Subscriber.confirmed_at >= start, Subscriber.confirmed_at < end))
    left = await session.scalar(select(func.count()).select_from(Subscriber).where(
        Subscriber.unsubscribed_at >= start, Subscriber.unsubscribed_at < end))
    issues = await session.scalar(select(func.count()).select_from(NewsletterIssue).where(
        NewsletterIssue.created_at >= start, NewsletterIssue.created_at < end))
    delivered = await session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.status == DeliveryStatus.SENT, Delivery.sent_at >= start, Delivery.sent_at < end))
    failed = await session.scalar(
        select(func.count()).select_from(Delivery)
        .join(NewsletterIssue, NewsletterIssue.id == Delivery.issue_id)
        .where(Delivery.status == DeliveryStatus.FAILED, NewsletterIssue.created_at >= start,
               NewsletterIssue.created_at < end))
    bounces = await session.scalar(select(func.count()).select_from(BounceReport).where(
        BounceReport.outcome == "hard", BounceReport.handled_at >= start,
        BounceReport.handled_at < end))
    return Reach(subscribers or 0, joined or 0, left or 0, issues or 0, delivered or 0,
                 failed or 0, bounces or 0)
