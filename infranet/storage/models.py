"""ORM models for the whole domain.

Enumerated values are stored as short strings and listed in the StrEnums
below, so that both engines and Alembic treat them alike. Every timestamp
is an aware UTC datetime (`UTCDateTime`); local time exists only on screen.

One module over 400 lines on purpose: it is the schema, read as a whole next to the
migrations that Alembic compares it with; the rules that use the tables live in the
components, not here.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from infranet.storage.types import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[str]: JSON}  # noqa: RUF012


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- places -------------------------------------------------------------------


class District(Base):
    """A powiat, a subregion or the region itself, synced from the region file."""

    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))  # region | subregion | powiat
    code: Mapped[str] = mapped_column(String(16))  # TERYT or NUTS
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))


# --- organisations and members ---------------------------------------------------


class OrgStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"


organisation_districts = Table(
    "organisation_districts",
    Base.metadata,
    Column("organisation_id", ForeignKey("organisations.id", ondelete="CASCADE"),
           primary_key=True),
    Column("district_id", ForeignKey("districts.id", ondelete="CASCADE"), primary_key=True),
)


class Organisation(TimestampMixin, Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    name_folded: Mapped[str] = mapped_column(String(200), index=True)
    short_name: Mapped[str | None] = mapped_column(String(60))
    type: Mapped[str] = mapped_column(String(40))  # LGD, COP, OWES, ... (editable list)
    services: Mapped[list[str]] = mapped_column(default=list)
    contact_email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    website: Mapped[str | None] = mapped_column(String(300))
    # Whether the public site shows contact_email / phone (migration 0020 says why: no).
    publish_email: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    publish_phone: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=OrgStatus.ACTIVE)
    approved_at: Mapped[datetime | None]
    # Moderation "new_members": events wait until an admin trusts the organisation.
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)

    districts: Mapped[list[District]] = relationship(
        secondary=organisation_districts, lazy="selectin", order_by=District.id
    )
    members: Mapped[list[Member]] = relationship(back_populates="organisation", lazy="raise")


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"


class MemberStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    BLOCKED = "blocked"
    REJECTED = "rejected"


class Member(TimestampMixin, Base):
    """A person (Telegram user) speaking for an organisation, or a network admin."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    username: Mapped[str | None] = mapped_column(String(64))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    status: Mapped[str] = mapped_column(String(16), default=MemberStatus.PENDING)
    language: Mapped[str | None] = mapped_column(String(8))
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))

    organisation: Mapped[Organisation | None] = relationship(
        back_populates="members", lazy="selectin"
    )

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN and self.status == MemberStatus.APPROVED

    @property
    def is_approved(self) -> bool:
        return self.status == MemberStatus.APPROVED


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # the person asked again (for another organisation) before a decision


class MembershipRequest(Base):
    """One request to join, with its own decision.

    The member row is reused by every request of one person, so a decision button names
    the request (`join_requests.id`), never the member: a button left over from an earlier,
    decided request can then only say who decided it, not act on a later one."""

    __tablename__ = "join_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"))
    new_organisation: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.PENDING, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    # Who decided, as shown to the other admins ("already decided by NAME"): kept as text so
    # that a decision by the CLI operator, or by a member since deleted, still names someone.
    decided_by_name: Mapped[str | None] = mapped_column(String(200))

    member: Mapped[Member] = relationship(foreign_keys=[member_id], lazy="selectin")
    organisation: Mapped[Organisation | None] = relationship(lazy="selectin")


class DecisionMessage(Base):
    """One admin's copy of a request waiting for a decision (a join request `jr`, an event
    `ev` or a training notice `tr` in moderation, a newsletter send `nl`): where it was sent,
    so that once any admin decides, every copy is edited to show the outcome and who decided."""

    __tablename__ = "decision_messages"
    __table_args__ = (Index("ix_decision_messages_subject", "kind", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    subject_id: Mapped[int] = mapped_column(Integer)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(8), default="pl")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- calendar --------------------------------------------------------------------


class EventStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Moderation(StrEnum):
    PUBLISHED = "published"
    PENDING = "pending"
    REJECTED = "rejected"


class Event(TimestampMixin, Base):
    """One event or one recurring series (RRULE), on the shared calendar.

    `starts_at`/`ends_at` are the first occurrence; `last_ends_at` is the end of
    the last occurrence, so that every range query on the table is an indexed
    overlap test (`starts_at < :end AND last_ends_at > :start`). All-day events
    are stored as the UTC instants of the local midnights that bound them.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_range", "starts_at", "last_ends_at"),
        Index("ix_events_last_ends_at", "last_ends_at"),
        # Recurring series only: conflict checks find them without scanning single events.
        Index("ix_events_series", "district_id", "starts_at", "last_ends_at",
              sqlite_where=text("rrule IS NOT NULL"), postgresql_where=text("rrule IS NOT NULL")),
        # max(updated_at) is the feeds' cheap "has anything changed" check.
        Index("ix_events_updated_at", "updated_at"),
        # Conflict checks: the candidate's districts first, then the time range, so only
        # the rows that really match are read from the table.
        Index("ix_events_place_range", "district_id", "starts_at", "last_ends_at"),
        # Feeds by category (`?category=training`): that category's rows in the feed window,
        # instead of every row of the window fetched and most of them dropped.
        Index("ix_events_category_range", "category", "last_ends_at"),
        # The few single events longer than a day (`long_span`): range queries read a day of
        # ix_events_range or ix_events_place_range, and a month of this one.
        Index("ix_events_long", "starts_at", "last_ends_at",
              sqlite_where=text("long_span = 1"), postgresql_where=text("long_span")),
        # An import finds a source's events by their UID in its file (calendar.ics_import).
        Index("ix_events_source_uid", "source_id", "source_uid"),
        # Single events only, with what the public listings test: a month grid counts each
        # day's events from this index alone, without reading the rows (calendar.site_listing).
        Index("ix_events_singles", "starts_at", "last_ends_at", "moderation", "rrule",
              sqlite_where=text("rrule IS NULL"), postgresql_where=text("rrule IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    title_folded: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str | None] = mapped_column(Text)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    last_ends_at: Mapped[datetime]
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    # An occurrence lasts longer than a day (calendar.event_input.LONG_SPAN): set with the times.
    long_span: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    rrule: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(300))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    audiences: Mapped[list[str]] = mapped_column(default=list)
    url: Mapped[str | None] = mapped_column(String(500))
    registration_url: Mapped[str | None] = mapped_column(String(500))
    # Who runs it when that is not a member organisation (an event proposed on the site by a
    # resident group): shown as the organiser; None: the organisation's name.
    organiser_name: Mapped[str | None] = mapped_column(String(200))
    # Cost of taking part: None not stated, 0 free (schema.org offers say "free").
    cost_pln: Mapped[Any | None] = mapped_column(Numeric(10, 2))
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.SCHEDULED)
    moderation: Mapped[str] = mapped_column(String(16), default=Moderation.PUBLISHED)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    cancelled_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16), default="bot")  # bot | cli | import | demo
    training_id: Mapped[int | None] = mapped_column(
        ForeignKey("trainings.id", ondelete="CASCADE"), index=True
    )
    # An override: one occurrence of the series `series_id` moved (or, cancelled, taken out),
    # published with the series' UID and RECURRENCE-ID = `recurrence_id`, the occurrence's
    # original start. The series' rule text lists it as moved (calendar.recurrence).
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    recurrence_id: Mapped[datetime | None]
    # The followed calendar (CalendarSource) this event came from: a source's import
    # touches only its own events.
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("calendar_sources.id", ondelete="SET NULL"), index=True
    )
    # An imported event: its UID in the file (the stored `uid` differs when another source
    # or event holds that UID already), and the file's SEQUENCE and LAST-MODIFIED, so that
    # an older copy never overwrites a newer one (calendar.ics_import).
    source_uid: Mapped[str | None] = mapped_column(String(255))
    source_sequence: Mapped[int | None] = mapped_column(Integer)
    source_modified: Mapped[datetime | None]

    organisation: Mapped[Organisation | None] = relationship(lazy="selectin")
    district: Mapped[District] = relationship(lazy="selectin")


class EventWord(Base):
    """One word of an event's title, description, place or free-text organiser, folded
    (`region.fold`: lower case, no diacritics): the site's search finds the events whose
    words begin with what was typed ("lodz" finds "Łodzi") through this index instead of
    reading every event (calendar.event_search keeps it, calendar.site_listing reads it)."""

    __tablename__ = "event_words"
    __table_args__ = (
        # "Has this event the word?" while a listing walks events in time order.
        Index("ix_event_words_event", "event_id", "word"),
    )

    # Byte order on PostgreSQL too, so that a prefix is one range of the primary key.
    word: Mapped[str] = mapped_column(String(64).with_variant(String(64, collation="C"), "postgresql"),
                                      primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)


class TrainingStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Training(TimestampMixin, Base):
    """A recruitment notice for a training cycle; its sessions are Events."""

    __tablename__ = "trainings"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    deadline: Mapped[date] = mapped_column(Date, index=True)
    target_group: Mapped[str] = mapped_column(String(300))
    places: Mapped[int | None] = mapped_column(Integer)
    cost_pln: Mapped[Any | None] = mapped_column(Numeric(10, 2))  # None: free
    apply_url: Mapped[str | None] = mapped_column(String(500))
    apply_email: Mapped[str | None] = mapped_column(String(254))
    apply_phone: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=TrainingStatus.OPEN, index=True)
    moderation: Mapped[str] = mapped_column(String(16), default=Moderation.PUBLISHED)
    reminded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship(lazy="selectin")
    district: Mapped[District] = relationship(lazy="selectin")


# --- referrals ---------------------------------------------------------------------


class ReferralStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CLOSED = "closed"


class Referral(TimestampMixin, Base):
    """A client sent from one organisation to another. Contact data is purged
    `[referrals] retention_days` after the referral is closed or declined."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(primary_key=True)
    from_org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    to_org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    from_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    client_kind: Mapped[str] = mapped_column(String(16))  # ngo | group | person
    client_name: Mapped[str | None] = mapped_column(String(200))
    client_key: Mapped[str] = mapped_column(String(200), index=True)  # KRS/NIP or folded name
    client_contact: Mapped[str | None] = mapped_column(String(300))
    krs: Mapped[str | None] = mapped_column(String(10), index=True)
    nip: Mapped[str | None] = mapped_column(String(10), index=True)
    need: Mapped[str | None] = mapped_column(Text)
    consent_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=ReferralStatus.PENDING)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]

    from_org: Mapped[Organisation] = relationship(foreign_keys=[from_org_id], lazy="selectin")
    to_org: Mapped[Organisation] = relationship(foreign_keys=[to_org_id], lazy="selectin")


# --- support given -----------------------------------------------------------------


class SupportRecord(Base):
    """Support a member organisation gave to a client organisation (an NGO known by KRS or
    NIP, or an informal group known by name and powiat): which service, when, where.
    Never a private person. The register's rules are in network/support.py; accepted
    referrals join it when it is read (`referral_id` links a record made for one, which
    then stands for it)."""

    __tablename__ = "support_records"
    __table_args__ = (
        # The duplicate check: the same client (by key, KRS or NIP) near a date.
        Index("ix_support_records_client", "client_key", "given_on"),
        # The public counts: per powiat and period.
        Index("ix_support_records_district_given", "district_id", "given_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    client_kind: Mapped[str] = mapped_column(String(16))  # ngo | group
    client_name: Mapped[str] = mapped_column(String(200))
    client_key: Mapped[str] = mapped_column(String(200))  # folded name (clients.client_key)
    krs: Mapped[str | None] = mapped_column(String(10), index=True)
    nip: Mapped[str | None] = mapped_column(String(10), index=True)
    service: Mapped[str] = mapped_column(String(40))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    given_on: Mapped[date] = mapped_column(Date)
    referral_id: Mapped[int | None] = mapped_column(
        ForeignKey("referrals.id", ondelete="SET NULL"), index=True)
    source: Mapped[str] = mapped_column(String(16), default="bot")  # bot | cli | import
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship(lazy="selectin")


class SupportDecision(Base):
    """A member's answer to a duplicate-support warning: saved anyway, or dropped. No client
    data: the figures ("duplicated support avoided") need only who, what, where and when."""

    __tablename__ = "support_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"))
    service: Mapped[str] = mapped_column(String(40))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    outcome: Mapped[str] = mapped_column(String(16))  # saved | dropped
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    support_id: Mapped[int | None] = mapped_column(
        ForeignKey("support_records.id", ondelete="SET NULL"))


# --- newsletter --------------------------------------------------------------------


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    DISABLED = "disabled"


class Subscriber(TimestampMixin, Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    language: Mapped[str] = mapped_column(String(8), default="pl")
    districts: Mapped[list[str]] = mapped_column(default=list)  # slugs; empty = everything
    categories: Mapped[list[str]] = mapped_column(default=list)  # empty = everything
    status: Mapped[str] = mapped_column(String(16), default=SubscriberStatus.PENDING, index=True)
    confirm_expires_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    consent_at: Mapped[datetime | None]
    consent_source: Mapped[str | None] = mapped_column(String(16))  # form | bot | import
    consent_version: Mapped[str | None] = mapped_column(String(32))
    hard_bounces: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped on unsubscribe/forget so that older signed links stop working.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    # Abuse limits on confirmation e-mails (newsletter/limits.py): when the last one was
    # sent, and how many were sent in a row with less than a day between them.
    confirm_sent_at: Mapped[datetime | None]
    confirm_sends: Mapped[int] = mapped_column(Integer, default=0)


class NewsletterNote(Base):
    """An admin's editorial note, waiting for the next issue."""

    __tablename__ = "newsletter_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("newsletter_issues.id"))


class IssueStatus(StrEnum):
    SENDING = "sending"
    DONE = "done"
    SKIPPED = "skipped"
    # Too many of its first deliveries refused (infranet/newsletter/queue.py): nothing
    # more is claimed until an admin resumes it (`newsletter resume`, the alert's button).
    PAUSED = "paused"


class NewsletterIssue(Base):
    """One issue; `period_key` is unique so that two instances never build it twice."""

    __tablename__ = "newsletter_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    period_key: Mapped[str] = mapped_column(String(64), unique=True)
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    subject: Mapped[str] = mapped_column(String(300))
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)  # snapshot for the archive
    status: Mapped[str] = mapped_column(String(16), default=IssueStatus.SENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # False: kept out of the public archive (`newsletter archive ISSUE --hide`), e.g. an
    # issue with a note meant for members only; its readers still get it by e-mail.
    archived: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Set when an admin resumed a paused issue: it is never paused automatically again.
    resumed_at: Mapped[datetime | None]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id"),
        # id last: the sender claims `issue_id = ? AND status = 'pending' ORDER BY id LIMIT n`
        # straight from the index, without sorting every pending row on each claim.
        Index("ix_deliveries_issue_status", "issue_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("newsletter_issues.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # Committed before the sender says DATA for this claim: a `sending` row without it was
    # certainly never handed to the server (a crash's claimed-ahead row), so it is resent.
    handed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(String(500))


class BounceReport(Base):
    """A report read from the bounce mailbox (infranet/newsletter/bounces.py) and acted
    on: a bounce, a complaint or a mailto: unsubscribe request. Written in the transaction
    that counts the bounce, so that a report handled but not yet moved out of the mailbox
    (a crash between the two) is recognised and never counted twice. Pruned after
    `KEEP_DAYS` (a report is moved out of the mailbox long before)."""

    __tablename__ = "bounce_reports"

    # sha256 (hex) of the report's Message-ID, or of its bytes when it has none.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # hard | soft | delayed | sender | complaint | unsubscribe | unmatched | other
    outcome: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[int | None] = mapped_column(Integer, index=True)


class CoordinationDecision(Base):
    """What a member (or an import) did after the calendar warned of a date clash: kept
    the date, moved to a suggested free date or another one, or dropped the event. Counts
    for the yearly evaluation (infranet/calendar/coordination.py); no personal data."""

    __tablename__ = "coordination_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16))  # bot | import | web
    conflicts: Mapped[int] = mapped_column(Integer)  # clashes the warning showed
    # kept | moved_suggested | moved_other | dropped
    outcome: Mapped[str] = mapped_column(String(16))


# --- service state -----------------------------------------------------------------


class AuditLog(Base):
    """Who changed what: written by every mutating business function."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))  # "tg:<id>", "cli", "system", "web"
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class BotState(Base):
    """python-telegram-bot persistence (conversations, user/chat data) in the database,
    so that conversations in progress survive a restart."""

    __tablename__ = "bot_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Bumped on a user's `user:<id>` row whenever an update moves that user's state: an
    # instance writes only if it is still the version it read (bot/persistence.py).
    version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class ServiceSecret(Base):
    """Secrets the service generates for itself, shared by every instance on the database.

    The signing key lives here rather than in each instance's data directory, so that a link
    signed by one instance is accepted by another (and the webhook secret derived from it is
    the same). `value` is the key's bytes in base64, so that any key an operator once put in a
    file (text or raw bytes) can be adopted unchanged."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- calendars followed by URL -----------------------------------------------


class SourceStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"


class CalendarSource(Base):
    """A member organisation's own calendar, followed by URL (or, `url` None, a file source
    known by name). The fetch state lives here: the validators the server gave
    (`etag`, `last_modified` as the header's text), the hash of the last body imported,
    and the backoff (`failures`, `next_fetch_at`; `failure_notified` once the members were
    told it keeps failing, cleared when it works again). Removed sources are kept
    (`status`), so that re-adding the same URL continues the same source and its events."""

    __tablename__ = "calendar_sources"
    __table_args__ = (
        UniqueConstraint("organisation_id", "url"),
        # The refresh job's question: the active sources due now.
        Index("ix_calendar_sources_due", "status", "next_fetch_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    url: Mapped[str | None] = mapped_column(String(2000))
    name: Mapped[str] = mapped_column(String(200))
    district: Mapped[str | None] = mapped_column(String(64))  # a district's slug
    category: Mapped[str | None] = mapped_column(String(20))
    added_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=SourceStatus.ACTIVE)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    last_fetched_at: Mapped[datetime | None]
    last_ok_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_fetch_at: Mapped[datetime | None]
    failure_notified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    organisation: Mapped[Organisation] = relationship(lazy="selectin")


# --- events proposed on the public site --------------------------------------


class EventProposal(Base):
    """Who proposed an event on the site's form (`/events/new`), only so that they can be
    told whether it was published: their e-mail address, an optional name and the language
    of the form. The event itself is an ordinary pending event. `decided_at` and `outcome`
    are set when the outcome is seen, `told_at` when the e-mail is claimed (before it is
    sent, so that it goes at most once); the row is deleted `RETENTION_DAYS` after that
    (calendar.proposals). `form_token` is the sha256 of the form token it was sent with:
    a token sends one proposal only."""

    __tablename__ = "event_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(8))
    form_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # published | rejected
    told_at: Mapped[datetime | None] = mapped_column(index=True)


# --- experts and trainers ---------------------------------------------------------


class Expert(TimestampMixin, Base):
    """A person (expert, trainer) the network's members may call on, added by a member with
    that person's consent (`consent_at`, recorded by the member `consent_by`, who showed the
    consent text of `consent_text_version`). Members only see them (network.experts), and
    a row is deleted whole on the person's request: no field is kept after `forget`.

    `topics_folded`, `districts_key` and `languages_key` are what the search compares
    (region.fold of each topic; district slugs and language codes between "|"), so that
    both engines answer it with a LIKE instead of reading every row."""

    __tablename__ = "experts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    topics: Mapped[list[str]] = mapped_column(default=list)
    topics_folded: Mapped[str] = mapped_column(Text, default="")
    districts: Mapped[list[str]] = mapped_column(default=list)  # district slugs
    districts_key: Mapped[str] = mapped_column(Text, default="")
    languages: Mapped[list[str]] = mapped_column(default=list)  # ISO 639 codes
    languages_key: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    added_by_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"))
    consent_at: Mapped[datetime]
    consent_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    consent_text_version: Mapped[str] = mapped_column(String(32))
