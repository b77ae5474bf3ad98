"""The newsletter's web pages, mounted on the shared Starlette app.

GET/POST /newsletter/subscribe      form; the answer never says whether the address was known;
                                    posts are limited per client IP (429 with Retry-After)
GET      /newsletter/confirm        double opt-in link
GET/POST /newsletter/preferences    language, districts, categories (signed link)
GET      /newsletter/unsubscribe    confirmation page with a button
POST     /newsletter/unsubscribe    unsubscribes at once (the button, and RFC 8058 one-click
                                    from mail clients: body List-Unsubscribe=One-Click)
GET      /newsletter/archive        sent issues
GET      /newsletter/archive/{id}   web version of one issue
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
from infranet.errors import InfranetError
from infranet.i18n import LANGUAGES, format_date, t
from infranet.newsletter import content as content_mod
from infranet.newsletter import limits
from infranet.newsletter import subscribers as subs
from infranet.newsletter.compose import subject_for
from infranet.newsletter.outbound import send_confirmation_after_answer
from infranet.newsletter.render import Renderer
from infranet.storage.models import IssueStatus, NewsletterIssue

log = logging.getLogger(__name__)
MAX_FORM_BYTES = 64 * 1024


def _lang(request: Request, ctx: AppContext, fallback: str | None = None) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    if fallback in LANGUAGES:
        return fallback  # type: ignore[return-value]
    header = request.headers.get("accept-language", "")
    for part in header.split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in LANGUAGES:
            return code
    return ctx.settings.newsletter.language


def _wait_text(seconds: int) -> str:
    """A wait as people read it: "45 s", "3 min"."""
    return f"{seconds} s" if seconds < 60 else f"{-(-seconds // 60)} min"


def routes(ctx: AppContext) -> list[Route]:
    renderer = Renderer(ctx)
    base = ctx.settings.http.public_base_url
    settings = ctx.settings.newsletter
    # request.client is the connection's peer as the ASGI server reports it (uvicorn replaces
    # it with X-Forwarded-For only for connections from a proxy on loopback); no header is
    # read here, so a remote client cannot choose the key it is counted by.
    form_limiter = limits.ClientLimiter(settings.form_burst, settings.form_per_minute)

    def page(name: str, lang: str, status: int = 200, **params: Any) -> HTMLResponse:
        return HTMLResponse(renderer.render(name, lang, **params), status_code=status,
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    def message(lang: str, heading: str, text: str, *, error: bool = False,
                status: int = 200) -> HTMLResponse:
        return page("message.html", lang, status, heading=heading, message=text, error=error)

    def prefs_params(lang: str, districts: list[str], categories: list[str]) -> dict[str, Any]:
        return {"subregions": ctx.region.subregions, "categories": subs.known_categories(),
                "chosen_language": lang, "chosen_districts": districts,
                "chosen_categories": categories}

    async def form(request: Request) -> dict[str, Any]:
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_FORM_BYTES:
            return {}
        data = await request.form()
        return {"email": str(data.get("email") or ""), "language": str(data.get("language") or ""),
                "districts": [str(v) for v in data.getlist("districts")],
                "categories": [str(v) for v in data.getlist("categories")],
                "consent": data.get("consent"), "one_click": data.get("List-Unsubscribe")}

    def too_many(request: Request, wait: int) -> Response:
        lang = _lang(request, ctx)
        log.debug("newsletter: subscription form rate limit for client %s",
                  limits.client_key(request.client.host if request.client else None))
        response = message(lang, t(lang, "newsletter.too_many_title"),
                           t(lang, "newsletter.too_many", wait=_wait_text(wait)), error=True,
                           status=429)
        response.headers["Retry-After"] = str(wait)
        return response

    async def subscribe_page(request: Request) -> Response:
        lang = _lang(request, ctx)
        if request.method == "GET":
            return page("subscribe.html", lang, email="", error=None, lang_switch=True,
                        **prefs_params(lang, [], []))
        wait = form_limiter.retry_after(request.client.host if request.client else None)
        if wait:
            return too_many(request, wait)
        data = await form(request)
        lang = data.get("language") if data.get("language") in LANGUAGES else lang
        error = None
        if not data.get("consent"):
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
                return done
        return page("subscribe.html", lang, 400, email=data.get("email", ""), error=error,
                    lang_switch=True, **prefs_params(lang, data.get("districts", []),
                                                     data.get("categories", [])))

    async def confirm_page(request: Request) -> Response:
        lang = _lang(request, ctx)
        sid, token = request.query_params.get("s"), request.query_params.get("t", "")
        try:
            async with ctx.db.transaction() as session:
                row = await subs.subscriber_for_link(session, ctx, sid, token, "confirm")
                lang = _lang(request, ctx, row.language)
                await subs.confirm(session, ctx, sid, token)
        except InfranetError as exc:
            return message(lang, t(lang, "newsletter.subscribe_title"), exc.localized(lang),
                           error=True, status=400)
        return message(lang, t(lang, "newsletter.subscribe_title"), t(lang, "newsletter.confirmed"))

    async def preferences_page(request: Request) -> Response:
        sid, token = request.query_params.get("s"), request.query_params.get("t", "")
        lang = _lang(request, ctx)
        action = f"{base}/newsletter/preferences?{urlencode({'s': sid or '', 't': token})}"
        unsubscribe_url = f"{base}/newsletter/unsubscribe?{urlencode({'s': sid or '', 't': ''})}"
        saved, error = False, None
        try:
            async with ctx.db.transaction() as session:
                if request.method == "POST":
                    data = await form(request)
                    try:
                        async with session.begin_nested():
                            await subs.update_preferences(
                                session, ctx, sid, token, language=data.get("language") or None,
                                districts=data["districts"], categories=data["categories"])
                        saved = True
                    except InfranetError as exc:
                        if exc.key == "newsletter.bad_link":
                            raise
                        error = exc.localized(lang)
                row = await subs.subscriber_for_link(session, ctx, sid, token, "preferences")
                from infranet.newsletter import tokens

                unsubscribe_url = tokens.link(ctx, "unsubscribe", row)
                lang = _lang(request, ctx, row.language) if request.method == "GET" else row.language
                params = prefs_params(row.language, list(row.districts or []),
                                      list(row.categories or []))
                email = row.email
        except InfranetError as exc:
            return message(lang, t(lang, "newsletter.preferences_title"), exc.localized(lang),
                           error=True, status=400)
        return page("preferences.html", lang, 400 if error else 200, email=email, saved=saved,
                    error=error, action=action, unsubscribe_url=unsubscribe_url, **params)

    async def unsubscribe_page(request: Request) -> Response:
        sid, token = request.query_params.get("s"), request.query_params.get("t", "")
        lang = _lang(request, ctx)
        title = t(lang, "newsletter.unsubscribe_title")
        try:
            async with ctx.db.transaction() as session:
                if request.method == "POST":
                    data = await form(request)
                    via = "one-click" if data.get("one_click") == "One-Click" else "page"
                    row = await subs.unsubscribe(session, ctx, sid, token, via=via)
                    lang = _lang(request, ctx, row.language)
                    return message(lang, t(lang, "newsletter.unsubscribe_title"),
                                   t(lang, "newsletter.unsubscribed"))
                row = await subs.subscriber_for_link(session, ctx, sid, token, "unsubscribe")
                lang = _lang(request, ctx, row.language)
                email = row.email
        except InfranetError as exc:
            return message(lang, title, exc.localized(lang), error=True, status=400)
        action = f"{base}/newsletter/unsubscribe?{urlencode({'s': sid, 't': token})}"
        return page("unsubscribe.html", lang, email=email, action=action)

    async def archive_index(request: Request) -> Response:
        lang = _lang(request, ctx)
        async with ctx.db.transaction() as session:
            issues = (await session.scalars(
                select(NewsletterIssue).where(NewsletterIssue.status.in_(
                    [IssueStatus.SENDING, IssueStatus.DONE]))
                .order_by(NewsletterIssue.period_start.desc()).limit(200))).all()
        items = [{"id": i.id, "label": f"{format_date(i.period_start.astimezone(ctx.tz).date(), lang)}"
                  f" – {subject_for(ctx, i.content, lang)}"} for i in issues]
        return page("archive_index.html", lang, issues=items, lang_switch=True)

    async def archive_issue(request: Request) -> Response:
        lang = _lang(request, ctx)
        issue_id = request.path_params["issue_id"]
        async with ctx.db.transaction() as session:
            issue = await session.get(NewsletterIssue, issue_id)
        if issue is None or issue.status == IssueStatus.SKIPPED:
            return message(lang, t(lang, "newsletter.archive_title"),
                           t(lang, "newsletter.no_issue", id=issue_id), error=True, status=404)
        _text, html = renderer.issue_variant(issue.id, issue.content,
                                             content_mod.everything(issue.content), lang, web=True)
        return HTMLResponse(html, headers={"Cache-Control": "public, max-age=300"})

    async def archive_text(request: Request) -> Response:
        lang = _lang(request, ctx)
        async with ctx.db.transaction() as session:
            issue = await session.get(NewsletterIssue, request.path_params["issue_id"])
        if issue is None or issue.status == IssueStatus.SKIPPED:
            return PlainTextResponse("not found", status_code=404)
        text, _html = renderer.issue_variant(issue.id, issue.content,
                                             content_mod.everything(issue.content), lang, web=True)
        return PlainTextResponse(text)

    return [
        Route("/newsletter/subscribe", subscribe_page, methods=["GET", "POST"]),
        Route("/newsletter/confirm", confirm_page, methods=["GET"]),
        Route("/newsletter/preferences", preferences_page, methods=["GET", "POST"]),
        Route("/newsletter/unsubscribe", unsubscribe_page, methods=["GET", "POST"]),
        Route("/newsletter/archive", archive_index, methods=["GET"]),
        Route("/newsletter/archive/{issue_id:int}", archive_issue, methods=["GET"]),
        Route("/newsletter/archive/{issue_id:int}.txt", archive_text, methods=["GET"]),
    ]
