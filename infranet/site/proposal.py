"""`/events/new`: proposing an event without Telegram (the proposer is told the outcome
by `proposal_outcomes`).

GET shows the form. POST `step=check` checks the fields and shows, for the chosen day and
district, what else happens then and the nearest free dates (the calendar's
`find_conflicts` and `suggest_dates`), with the form kept filled in; POST `step=send`
stores a pending event (`infranet.calendar.proposals`) that the bot's moderation announces
to the admins. Nothing is stored unless every field is right.

Abuse, without a third-party CAPTCHA:
- every POST spends the per-client budget of the newsletter's sign-up form (the same
  `ClientLimiter` and `[newsletter] form_burst`/`form_per_minute`, a bucket of its own):
  429 with Retry-After beyond it;
- the form carries a token, an HMAC with the service's key over the moment it was shown
  and a random nonce: it sends only between TOKEN_MIN_AGE and TOKEN_MAX_AGE after that
  (a bot that posts at once, or a page left open for a day, is refused with a message),
  and only once (its hash is stored with the proposal, unique).

The coordination figures (`calendar.coordination`, source "web"): a check that lists at
least one clashing event (day warnings alone are no clash) is remembered by the form's
token, in this process's memory (`_Warnings`, bounded, for the token's lifetime; the form
has no field for it). The proposal sent with that token counts one warning, the last
clash shown: sent with that date = "kept", with the free date a pick button moved the form
to = "moved_suggested", with another date typed = "moved_other", in the transaction that
stores the proposal (a token sends once, so a replay counts nothing). A proposal sent on
another instance than the one that checked it, or after a restart, is not counted.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from infranet.calendar import coordination, proposal_outcomes, proposals
from infranet.calendar.event_input import AUDIENCES, CATEGORIES, audience_label, category_label
from infranet.context import AppContext
from infranet.errors import InfranetError
from infranet.i18n import format_date, format_span, t
from infranet.newsletter import limits
from infranet.region import fold
from infranet.security import sign, verify
from infranet.site.pages import Site, with_params

PATH = "/events/new"
TOKEN_PURPOSE = "event-proposal-form"  # noqa: S105 - an HMAC purpose, not a secret
TOKEN_MIN_AGE = timedelta(seconds=3)  # a person reads and types longer than this
TOKEN_MAX_AGE = timedelta(hours=2)
TOKEN_MAX_CHARS = 120
NO_STORE = {"Cache-Control": "no-store"}


# --- the form token ----------------------------------------------------------------------


class TokenRefused(InfranetError):
    """The form's token does not allow sending: too fast, expired or not ours."""


def issue_token(ctx: AppContext) -> str:
    """`<unix time>.<nonce>.<mac>`: when the form was shown, unique per showing."""
    payload = f"{int(ctx.now().timestamp())}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{sign(ctx.secret_key, TOKEN_PURPOSE, payload)}"


def check_token(ctx: AppContext, token: str) -> str:
    """The key a token is remembered by once used (its hash), or TokenRefused."""
    parts = token.split(".") if len(token) <= TOKEN_MAX_CHARS else []
    if len(parts) != 3 or not (parts[0].isascii() and parts[0].isdigit() and len(parts[0]) <= 12):
        raise TokenRefused("site.proposal.token.forged")
    payload = f"{parts[0]}.{parts[1]}"
    if not verify(ctx.secret_key, TOKEN_PURPOSE, payload, parts[2]):
        raise TokenRefused("site.proposal.token.forged")
    age = ctx.now().timestamp() - int(parts[0])
    if age < TOKEN_MIN_AGE.total_seconds():
        raise TokenRefused("site.proposal.token.too_fast")
    if age > TOKEN_MAX_AGE.total_seconds():
        raise TokenRefused("site.proposal.token.expired",
                           hours=int(TOKEN_MAX_AGE.total_seconds() // 3600))
    return hashlib.sha256(token.encode()).hexdigest()


# --- the page ----------------------------------------------------------------------------


def _read(data: FormData, lang: str) -> proposals.ProposalForm:
    """The posted fields as text (a file sent in a field is not a value of it)."""

    def text(name: str) -> str:
        value = data.get(name)
        return value if isinstance(value, str) else ""

    audiences = [v for v in data.getlist("audiences") if isinstance(v, str)]
    return proposals.ProposalForm(
        title=text("title"), start_date=text("start_date"), end_date=text("end_date"),
        start_time=text("start_time"), end_time=text("end_time"), all_day=bool(text("all_day")),
        location=text("location"), district=text("district"), category=text("category"),
        audiences=audiences[:len(AUDIENCES) * 2], description=text("description"),
        organiser_name=text("organiser_name"), registration_url=text("registration_url"),
        cost=text("cost"), email=text("email"), name=text("name"), language=lang)


@dataclass
class _View:
    """What proposal.html shows besides the fields."""

    form: proposals.ProposalForm
    token: str
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None
    check: dict[str, Any] | None = None


def _when(ctx: AppContext, start: datetime | date, end: datetime | date, lang: str) -> str:
    """A suggested date as people read it (all-day: dates, end inclusive)."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        return format_span(start, end, ctx.tz, lang)
    assert isinstance(start, date) and isinstance(end, date)
    first, last = format_date(start, lang), format_date(end, lang)
    return first if start == end else f"{first} – {last}"


def _check_view(ctx: AppContext, preview: proposals.Preview, lang: str) -> dict[str, Any]:
    report = preview.conflicts

    def rows(items: list[Any]) -> list[dict[str, Any]]:
        return [{"title": c.event.title,
                 "when": format_span(c.start, c.end, ctx.tz, lang, all_day=c.event.all_day),
                 "district": c.event.district.name, "organiser": c.organisation_name or ""}
                for c in items]

    return {"conflicts": rows(report.conflicts), "duplicates": rows(report.duplicates),
            "warnings": [w.message(lang) for w in report.warnings], "nothing_else": report.clear,
            "suggestions": [{"label": _when(ctx, s, e, lang), "value": _pick_value(ctx, s, e)}
                            for s, e in preview.suggestions]}


def _local_day(ctx: AppContext, moment: datetime | date) -> date:
    return moment.astimezone(ctx.tz).date() if isinstance(moment, datetime) else moment


def _pick_value(ctx: AppContext, start: datetime | date, end: datetime | date) -> str:
    """What a suggested date's button sends: its first and last day (the hours stay)."""
    return f"{_local_day(ctx, start).isoformat()}/{_local_day(ctx, end).isoformat()}"


def _picked(form: proposals.ProposalForm, value: str) -> proposals.ProposalForm | None:
    """The form moved to a suggested date (`_pick_value`), or None for anything else."""
    first, _, last = value.partition("/")
    try:
        start, end = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        return None
    if len(value) != 21 or end < start:
        return None
    return replace(form, start_date=start.isoformat(),
                   end_date="" if end == start else end.isoformat())


def _date_key(event: Any) -> str:
    return f"{event.start.isoformat()}/{event.end.isoformat()}/{bool(event.all_day)}"


class _Warnings:
    """The last clash each form token was shown (conflicts, dates shown, dates picked),
    at most MAX tokens for at most the token's lifetime: a flood of checks with made-up
    tokens pushes out the oldest, never more memory."""

    MAX = 5000

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[float, int, str, str | None]] = OrderedDict()

    @staticmethod
    def key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()  # as `check_token` remembers it

    def shown(self, token: str, conflicts: int, dates: str) -> None:
        key = self.key(token)
        self._items.pop(key, None)
        self._items[key] = (time.monotonic(), conflicts, dates, None)
        while len(self._items) > self.MAX:
            self._items.popitem(last=False)

    def picked(self, token: str, dates: str) -> None:
        """The form moved to a suggested date (its check shows no clash there)."""
        found = self._items.get(self.key(token))
        if found is not None:
            self._items[self.key(token)] = (found[0], found[1], found[2], dates)

    def outcome(self, token_key: str, dates: str) -> tuple[str, int] | None:
        """What the proposal sent with these dates did about its token's last warning."""
        found = self._items.pop(token_key, None)
        if found is None or time.monotonic() - found[0] > TOKEN_MAX_AGE.total_seconds():
            return None
        _at, conflicts, shown, picked = found
        if dates == shown:
            return "kept", conflicts
        return ("moved_suggested" if dates == picked else "moved_other"), conflicts


def routes(site: Site) -> list[BaseRoute]:
    ctx = site.ctx
    warnings = _Warnings()
    settings = ctx.settings.newsletter
    # The newsletter sign-up form's budget (its class and settings), a bucket of its own.
    limiter = limits.ClientLimiter(settings.form_burst, settings.form_per_minute)

    def choices(lang: str) -> dict[str, Any]:
        root = ctx.region.root
        powiaty = sorted(((d.slug, d.name) for d in ctx.region.powiaty), key=lambda p: fold(p[1]))
        districts = [(root.slug, root.name), *powiaty]
        return {"districts": districts,
                "categories": [(c, category_label(c, lang)) for c in CATEGORIES],
                "audiences": [(a, audience_label(a, lang)) for a in AUDIENCES]}

    def form_page(request: Request, lang: str, view: _View, status: int = 200) -> Response:
        return site.page(request, "proposal.html", lang, status_code=status, headers=NO_STORE,
                         title=t(lang, "site.proposal.title"), f=view.form, token=view.token,
                         errors=view.errors, notice=view.notice, check=view.check,
                         # The language always named (a visitor who chose Polish over their
                         # browser's English stays in Polish); the answer to "check" opens
                         # at its result, below the fields.
                         action=with_params(PATH, [("lang", lang)]) + "#check",
                         retention_days=proposal_outcomes.RETENTION_DAYS, **choices(lang))

    def too_many(request: Request, lang: str, wait: int, form: proposals.ProposalForm,
                 token: str) -> Response:
        """429 with Retry-After, and the form as it was sent (nothing typed is lost)."""
        wait_text = f"{wait} s" if wait < 60 else f"{-(-wait // 60)} min"
        notice = t(lang, "site.proposal.too_many", wait=wait_text)
        response = form_page(request, lang, _View(form, token, notice=notice), 429)
        response.headers["Retry-After"] = str(wait)
        return response

    async def check(request: Request, lang: str, form: proposals.ProposalForm,
                    token: str, picked: bool = False) -> Response:
        try:
            event = proposals.read_event(ctx, form)
            async with ctx.db.read() as session:
                preview = await proposals.preview(session, ctx, event)
        except proposals.ProposalInvalid as exc:
            return invalid(request, lang, form, token, exc)
        except InfranetError as exc:
            return form_page(request, lang, _View(form, token, notice=exc.localized(lang)), 400)
        clashes = len(preview.conflicts.conflicts) + len(preview.conflicts.duplicates)
        if clashes:  # the coordination figures: a warning shown (see the module's doc)
            warnings.shown(token, clashes, _date_key(event))
        elif picked:
            warnings.picked(token, _date_key(event))
        return form_page(request, lang, _View(form, token, check=_check_view(ctx, preview, lang)))

    def invalid(request: Request, lang: str, form: proposals.ProposalForm, token: str,
                exc: proposals.ProposalInvalid) -> Response:
        errors = {name: error.localized(lang) for name, error in exc.errors.items()}
        return form_page(request, lang, _View(form, token, errors, exc.localized(lang)), 400)

    async def send(request: Request, lang: str, form: proposals.ProposalForm,
                   token: str) -> Response:
        try:
            token_key = check_token(ctx, token)
        except TokenRefused as exc:  # a fresh token: the form can be sent again (later)
            return form_page(request, lang, _View(form, issue_token(ctx), notice=exc.localized(lang)),
                             400)
        try:
            proposal = proposals.read_form(ctx, form)
            async with ctx.db.transaction() as session:
                event = await proposals.propose(session, ctx, proposal, token_key)
                title = event.title
                answered = warnings.outcome(token_key, _date_key(proposal.event))
                if answered is not None:
                    await coordination.record_decision(
                        session, outcome=answered[0], conflicts=answered[1], source="web",
                        organisation_id=event.organisation_id, event_id=event.id)
        except proposals.ProposalInvalid as exc:
            return invalid(request, lang, form, token, exc)
        except proposals.ProposalReplayed as exc:
            return site.problem(request, lang, exc.localized(lang), status_code=409)
        except InfranetError as exc:
            return form_page(request, lang, _View(form, token, notice=exc.localized(lang)), 400)
        return site.page(request, "proposal_sent.html", lang, headers=NO_STORE,
                         title=t(lang, "site.proposal.sent.title"), event_title=title,
                         email=proposal.email, again=with_params(PATH, [("lang", lang)]))

    async def page(request: Request) -> Response:
        lang = site.language(request)
        if request.method == "GET":
            return form_page(request, lang, _View(proposals.ProposalForm(language=lang),
                                                  issue_token(ctx)))
        wait = limiter.retry_after(request.client.host if request.client else None)
        data = await request.form()  # capped by infranet.web.body while it streams in
        form = _read(data, lang)
        token = data.get("token")
        token = token if isinstance(token, str) and len(token) <= TOKEN_MAX_CHARS else ""
        if wait:
            return too_many(request, lang, wait, form, token)
        pick = data.get("pick")
        if isinstance(pick, str):  # a suggested date's button: check the form moved there
            moved = _picked(form, pick)
            return await check(request, lang, moved or form, token or issue_token(ctx),
                               picked=moved is not None)
        if data.get("step") == "send":
            return await send(request, lang, form, token)
        return await check(request, lang, form, token or issue_token(ctx))

    return [Route(PATH, page, methods=["GET", "POST"])]
