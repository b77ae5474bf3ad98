"""The newsletter's web pages, mounted on the shared Starlette app.

GET/POST /newsletter/subscribe      form; the answer never says whether the address was known
GET      /newsletter/confirm        the double opt-in link: a page with a button, changes nothing
POST     /newsletter/confirm        confirms (the button)
GET/POST /newsletter/preferences    language, districts, categories (signed link)
GET      /newsletter/unsubscribe    confirmation page with a button, changes nothing
POST     /newsletter/unsubscribe    unsubscribes at once (the button, and RFC 8058 one-click
                                    from mail clients: body List-Unsubscribe=One-Click)
GET      /newsletter/archive        sent issues
GET      /newsletter/archive/{id}   web version of one issue

Only POST changes anything: mail gateways fetch every link in a message to scan it, so a
link that confirmed or unsubscribed on GET would do it for the reader, unasked.

Every POST is limited per client (a token bucket per IP, `[newsletter] form_burst` and
`form_per_minute`; 429 with Retry-After): one budget for the sign-up form, one for the
forms behind signed links. Bodies are capped by `infranet.web.body` before any form is
parsed, and every id comes through `infranet.web.params`, so a malformed link is "invalid
link" (400) and an archive id that cannot exist is 404, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from infranet.context import AppContext
from infranet.errors import InfranetError, ValidationFailed
from infranet.i18n import LANGUAGES, format_date, t
from infranet.newsletter import content as content_mod
from infranet.newsletter import limits
from infranet.newsletter import subscribers as subs
from infranet.newsletter import tokens as tokens_mod
from infranet.newsletter.compose import subject_for
from infranet.newsletter.outbound import send_confirmation_after_answer
from infranet.newsletter.render import Renderer
from infranet.storage.models import IssueStatus, NewsletterIssue, Subscriber, SubscriberStatus
from infranet.web import params

log = logging.getLogger(__name__)
# A token is about 43 characters; anything much longer is not one.
MAX_TOKEN_CHARS = 200



def _lang(request: Request, ctx: AppContext, fallback: str | None = None) -> str:
    """`lang` if asked for, else the subscriber's language (`fallback`), else the browser's."""
    asked = request.query_params.get("lang")
    if asked not in LANGUAGES and fallback in LANGUAGES:
        asked = fallback
    return params.preferred_language(asked, request.headers.get("accept-language"),
                                     ctx.settings.newsletter.language)


def _link_args(request: Request) -> tuple[int, str]:
    """The subscriber id and token of a signed link; anything malformed (an id beyond 64
    bits, Unicode digits, a huge token) is simply an invalid link."""
    token = request.query_params.get("t", "")
    try:
        sid = params.parse_id(request.query_params.get("s"), "s")
    except InfranetError:
        raise ValidationFailed("newsletter.bad_link") from None
    if len(token) > MAX_TOKEN_CHARS:
        raise ValidationFailed("newsletter.bad_link")
    return sid, token


def _link_query(sid: int, token: str) -> str:
    return urlencode({"s": sid, "t": token})


def _wait_text(seconds: int) -> str:
    """A wait as people read it: "45 s", "3 min"."""
    return f"{seconds} s" if seconds < 60 else f"{-(-seconds // 60)} min"


def _confirmable(row: Subscriber, ctx: AppContext) -> bool:
    """Whether the confirm page should offer its button: True for a pending subscription,
    False for one already confirmed; ValidationFailed (as `subs.confirm` would raise on
    the POST) for one that cannot be confirmed any more."""
    if row.status == SubscriberStatus.CONFIRMED:
        return False
    if row.status != SubscriberStatus.PENDING:
        raise ValidationFailed("newsletter.bad_link")
    if row.confirm_expires_at is not None and row.confirm_expires_at < ctx.now():
        raise ValidationFailed("newsletter.expired", days=ctx.settings.newsletter.confirm_ttl_days)
    return True


async def send_preferences_after_answer(ctx: AppContext, subscriber_id: int) -> None:
    """The preferences link to a confirmed reader who signed up again, sent after the
    answer (which is the same for every address) so that timing tells nothing either."""
    from infranet.newsletter.compose import Composer, SubscriberRef
    from infranet.newsletter.outbound import send_one
    from infranet.storage.models import Subscriber, SubscriberStatus

    try:
        async with ctx.db.transaction() as session:
            row = await session.get(Subscriber, subscriber_id)
            if row is None or row.status != SubscriberStatus.CONFIRMED:
                return
            ref = SubscriberRef.of(row)
        outcome = await send_one(ctx, Composer(ctx).preferences_link(ref))
        if outcome.kind != "sent":
            log.warning("newsletter: preferences-link e-mail refused: %s", outcome.detail)
    except Exception:
        log.exception("newsletter: could not send the preferences-link e-mail")


def routes(ctx: AppContext) -> list[Route]:
    renderer = Renderer(ctx)
    base = ctx.settings.http.public_base_url
    settings = ctx.settings.newsletter
    # request.client is the connection's peer as the ASGI server reports it (uvicorn replaces
    # it with X-Forwarded-For only for connections from a trusted proxy); no header is read
    # here, so a remote client cannot choose the key it is counted by. The sign-up form and
    # the forms behind signed links have a budget each, so signing up does not use up the
    # confirmation that follows.
    form_limiter = limits.ClientLimiter(settings.form_burst, settings.form_per_minute)
    link_limiter = limits.ClientLimiter(settings.form_burst, settings.form_per_minute)

    def page(name: str, lang: str, status: int = 200, **values: Any) -> HTMLResponse:
        # no-referrer: these pages' own URLs carry signed tokens.
        return HTMLResponse(renderer.render(name, lang, **values), status_code=status,
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    def message(lang: str, heading: str, text: str, *, error: bool = False,
                status: int = 200) -> HTMLResponse:
        return page("message.html", lang, status, heading=heading, message=text, error=error)

    def prefs_params(lang: str, districts: list[str], categories: list[str]) -> dict[str, Any]:
        return {"subregions": ctx.region.subregions, "categories": subs.known_categories(),
                "chosen_language": lang, "chosen_districts": districts,
                "chosen_categories": categories}

    async def form(request: Request) -> dict[str, Any]:
        """The posted fields, each present (empty when not sent). The body is already capped
        by `infranet.web.body` while it streams in: a form over the cap never gets here, so
        it can never be taken for a form with a field missing. A file sent in a field is
        not a value of it."""
        data = await request.form()

        def text(name: str) -> str:
            value = data.get(name)
            return value if isinstance(value, str) else ""

        def texts(name: str) -> list[str]:
            return [value for value in data.getlist(name) if isinstance(value, str)]

        return {"email": text("email"), "language": text("language"),
                "districts": texts("districts"), "categories": texts("categories"),
                "consent": text("consent"), "one_click": text("List-Unsubscribe")}

    def client_host(request: Request) -> str | None:
        return request.client.host if request.client else None

    def too_many(request: Request, wait: int, lang: str | None = None) -> Response:
        lang = lang or _lang(request, ctx)
        log.debug("newsletter: form rate limit for client %s at %s",
                  limits.client_key(client_host(request)), request.url.path)
        response = message(lang, t(lang, "newsletter.too_many_title"),
                           t(lang, "newsletter.too_many", wait=_wait_text(wait)), error=True,
                           status=429)
        response.headers["Retry-After"] = str(wait)
        return response

    def over_budget(request: Request, limiter: limits.ClientLimiter) -> Response | None:
        """Take a token of this client's budget: None, or the 429 answer when none is left."""
        wait = limiter.retry_after(client_host(request))
        return too_many(request, wait) if wait else None

    async def subscribe_page(request: Request) -> Response:
        lang = _lang(request, ctx)
        if request.method == "GET":
            return page("subscribe.html", lang, email="", error=None, lang_switch=True,
                        **prefs_params(lang, [], []))
        refused = over_budget(request, form_limiter)
        if refused:
            return refused
        data = await form(request)
        lang = data["language"] if data["language"] in LANGUAGES else lang
        error = None
        if not data["consent"]:
            error = t(lang, "newsletter.consent_required")
        else:
            try:
                async with ctx.db.transaction() as session:
                    result = await subs.subscribe(
                        session, ctx, data["email"], source="form", language=lang,
                        districts=data["districts"], categories=data["categories"])
            except InfranetError as exc:
                error = exc.localized(lang)
            else:
                done = message(lang, t(lang, "newsletter.subscribe_title"),
                               t(lang, "newsletter.subscribe_done"))
                if result.needs_confirmation:
                    done.background = BackgroundTask(send_confirmation_after_answer, ctx,
                                                     result.subscriber_id)
                elif result.send_preferences:
                    done.background = BackgroundTask(send_preferences_after_answer, ctx,
                                                     result.subscriber_id)
                return done
        return page("subscribe.html", lang, 400, email=data["email"][:300], error=error,
                    lang_switch=True, **prefs_params(lang, data["districts"], data["categories"]))

    async def confirm_page(request: Request) -> Response:
        """GET shows the button and changes nothing (a mail scanner fetching the link
        confirms nobody); POST, the button, confirms."""
        lang = _lang(request, ctx)
        posted = request.method == "POST"
        if posted:
            refused = over_budget(request, link_limiter)
            if refused:
                return refused
            await form(request)  # the button sends nothing; an upload meets the cap
        try:
            sid, token = _link_args(request)
            async with ctx.db.transaction() as session:
                row = await subs.subscriber_for_link(session, ctx, sid, token, "confirm")
                lang = _lang(request, ctx, row.language)
                if posted:
                    await subs.confirm(session, ctx, sid, token)
                    ask = False
                else:
                    ask = _confirmable(row, ctx)
                email = row.email
        except InfranetError as exc:
            return message(lang, t(lang, "newsletter.subscribe_title"), exc.localized(lang),
                           error=True, status=400)
        if not ask:
            return message(lang, t(lang, "newsletter.subscribe_title"),
                           t(lang, "newsletter.confirmed"))
        return page("confirm_page.html", lang, email=email,
                    action=f"{base}/newsletter/confirm?{_link_query(sid, token)}")

    async def preferences_page(request: Request) -> Response:
        lang = _lang(request, ctx)
        posted = request.method == "POST"
        data: dict[str, Any] = {}
        if posted:
            refused = over_budget(request, link_limiter)
            if refused:
                return refused
            data = await form(request)  # read before the transaction: a slow body holds none
        saved, error = False, None
        try:
            sid, token = _link_args(request)
            async with ctx.db.transaction() as session:
                if posted:
                    try:
                        async with session.begin_nested():
                            await subs.update_preferences(
                                session, ctx, sid, token, language=data["language"] or None,
                                districts=data["districts"], categories=data["categories"])
                        saved = True
                    except InfranetError as exc:
                        if exc.key == "newsletter.bad_link":
                            raise
                        error = exc.localized(lang)
                row = await subs.subscriber_for_link(session, ctx, sid, token, "preferences")
                unsubscribe_url = tokens_mod.link(ctx, "unsubscribe", row)
                lang = row.language if posted else _lang(request, ctx, row.language)
                values = prefs_params(row.language, list(row.districts or []),
                                      list(row.categories or []))
                email = row.email
        except InfranetError as exc:
            return message(lang, t(lang, "newsletter.preferences_title"), exc.localized(lang),
                           error=True, status=400)
        action = f"{base}/newsletter/preferences?{_link_query(sid, token)}"
        return page("preferences.html", lang, 400 if error else 200, email=email, saved=saved,
                    error=error, action=action, unsubscribe_url=unsubscribe_url, **values)

    async def unsubscribe_page(request: Request) -> Response:
        """GET shows the button and changes nothing; POST unsubscribes. An RFC 8058
        one-click POST comes from the mail provider's servers, on behalf of many readers
        at once, so it is not charged to the sender's budget unless its link turns out
        invalid: a valid link is never refused for want of budget, a flood of forged
        ones is."""
        lang = _lang(request, ctx)
        title = t(lang, "newsletter.unsubscribe_title")
        posted = request.method == "POST"
        one_click = False
        if posted:
            data = await form(request)
            one_click = data["one_click"] == "One-Click"
            refused = None if one_click else over_budget(request, link_limiter)
            if refused:
                return refused
        try:
            sid, token = _link_args(request)
            async with ctx.db.transaction() as session:
                if posted:
                    row = await subs.unsubscribe(session, ctx, sid, token,
                                                 via="one-click" if one_click else "page")
                    lang = _lang(request, ctx, row.language)
                    return message(lang, t(lang, "newsletter.unsubscribe_title"),
                                   t(lang, "newsletter.unsubscribed"))
                row = await subs.subscriber_for_link(session, ctx, sid, token, "unsubscribe")
                lang = _lang(request, ctx, row.language)
                email = row.email
        except InfranetError as exc:
            if one_click:
                refused = over_budget(request, link_limiter)
                if refused:
                    return refused
            return message(lang, title, exc.localized(lang), error=True, status=400)
        action = f"{base}/newsletter/unsubscribe?{_link_query(sid, token)}"
        return page("unsubscribe.html", lang, email=email, action=action)

    async def privacy_page(request: Request) -> Response:
        """The privacy notice (RODO art. 13), linked from every e-mail."""
        lang = _lang(request, ctx)
        return HTMLResponse(renderer.render("privacy.html", lang, lang_switch=True),
                            headers={"Cache-Control": "public, max-age=3600"})

    async def test_copy_page(request: Request) -> Response:
        """Where every link of a test copy leads (GET, and the one-click POST of its
        List-Unsubscribe): it changes nothing and says why."""
        lang = _lang(request, ctx)
        return message(lang, t(lang, "newsletter.test_copy_title"), t(lang, "newsletter.test_copy"))

    async def archive_index(request: Request) -> Response:
        lang = _lang(request, ctx)
        async with ctx.db.transaction() as session:
            issues = (await session.scalars(
                select(NewsletterIssue).where(NewsletterIssue.status.in_(
                    [IssueStatus.SENDING, IssueStatus.DONE]), NewsletterIssue.archived.is_(True))
                .order_by(NewsletterIssue.period_start.desc()).limit(200))).all()
        items = [{"id": i.id, "label": f"{format_date(i.period_start.astimezone(ctx.tz).date(), lang)}"
                  f" – {subject_for(ctx, i.content, lang)}"} for i in issues]
        return page("archive_index.html", lang, issues=items, lang_switch=True)

    async def sent_issue(request: Request) -> NewsletterIssue | None:
        """The issue named in the path, if it was sent; an id no issue can have (not a
        number, beyond 64 bits) is simply not found."""
        try:
            issue_id = params.parse_id(request.path_params["issue_id"], "issue_id")
        except InfranetError:
            return None
        async with ctx.db.transaction() as session:
            issue = await session.get(NewsletterIssue, issue_id)
        if issue is None or issue.status == IssueStatus.SKIPPED or not issue.archived:
            return None  # an issue kept out of the archive is not found, as if it never was
        return issue

    async def archive_issue(request: Request) -> Response:
        lang = _lang(request, ctx)
        issue = await sent_issue(request)
        if issue is None:
            shown = str(request.path_params["issue_id"])[:40]
            return message(lang, t(lang, "newsletter.archive_title"),
                           t(lang, "newsletter.no_issue", id=shown), error=True, status=404)
        _text, html = renderer.issue_variant(issue.id, issue.content,
                                             content_mod.everything(issue.content), lang, web=True)
        return HTMLResponse(html, headers={"Cache-Control": "public, max-age=300"})

    async def archive_text(request: Request) -> Response:
        lang = _lang(request, ctx)
        issue = await sent_issue(request)
        if issue is None:
            return PlainTextResponse("not found", status_code=404)
        text, _html = renderer.issue_variant(issue.id, issue.content,
                                             content_mod.everything(issue.content), lang, web=True)
        return PlainTextResponse(text)

    return [
        Route("/newsletter/subscribe", subscribe_page, methods=["GET", "POST"]),
        Route("/newsletter/confirm", confirm_page, methods=["GET", "POST"]),
        Route("/newsletter/preferences", preferences_page, methods=["GET", "POST"]),
        Route("/newsletter/unsubscribe", unsubscribe_page, methods=["GET", "POST"]),
        Route("/newsletter/test-copy", test_copy_page, methods=["GET", "POST"]),
        Route("/newsletter/privacy", privacy_page, methods=["GET"]),
        Route("/newsletter/archive", archive_index, methods=["GET"]),
        # Plain path parameters, parsed by `web.params`: Starlette's `int` converter takes
        # any number of digits, and 20 of them overflow the database driver. The .txt
        # route comes first, or "{issue_id}" would take "5.txt" whole.
        Route("/newsletter/archive/{issue_id}.txt", archive_text, methods=["GET"]),
        Route("/newsletter/archive/{issue_id}", archive_issue, methods=["GET"]),
    ]
