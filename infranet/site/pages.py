"""What every page of the site shares: the templates, the visitor's language, the layout's
navigation and the link that switches language without leaving the page.

Route modules receive one `Site` (made by `infranet.site.service`) and call `site.page(...)`;
they never build their own Jinja environment or read the language themselves.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from infranet.context import AppContext
from infranet.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from infranet.web.params import MAX_PARAM_CHARS, preferred_language

# (path, message id): the layout's navigation, in the order the issue of the network names it.
NAVIGATION = (
    ("/events", "site.nav.events"),
    ("/trainings", "site.nav.trainings"),
    ("/organisations", "site.nav.organisations"),
    ("/insight", "site.nav.insight"),
    ("/calendar", "site.nav.feeds"),
    ("/newsletter/subscribe", "site.nav.newsletter"),
)


def page_language(request: Request) -> str:
    """`?lang=` when it names a language we speak, else the browser's Accept-Language,
    else Polish. Links inside the site carry `lang` only when it is not Polish."""
    asked = request.query_params.get("lang")
    return preferred_language(asked[:8] if asked else None, request.headers.get("accept-language"))


def with_params(path: str, params: list[tuple[str, str]]) -> str:
    """`path?a=1&b=2` (just `path` without parameters); values are URL-encoded here, and
    the result is escaped again by the template that shows it."""
    return f"{path}?{urlencode(params)}" if params else path


def switch_language_url(request: Request, lang: str) -> str:
    """The same page, with every query parameter kept, in `lang`."""
    kept = [(k, v[:MAX_PARAM_CHARS]) for k, v in request.query_params.multi_items() if k != "lang"]
    if lang != DEFAULT_LANGUAGE:
        kept.append(("lang", lang))
    return with_params(request.url.path, kept)


def lang_param(lang: str) -> list[tuple[str, str]]:
    """The query parameter a link inside the site carries to keep the visitor's language."""
    return [] if lang == DEFAULT_LANGUAGE else [("lang", lang)]


class Site:
    """The site's shared parts, made once per process."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.base_url = ctx.settings.http.public_base_url.rstrip("/")
        self.env = Environment(
            loader=PackageLoader("infranet.site", "templates"),
            autoescape=select_autoescape(["html", "xml"], default_for_string=True),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    def language(self, request: Request) -> str:
        return page_language(request)

    def common(self, request: Request, lang: str) -> dict[str, Any]:
        """What the layout (`base.html`) needs on every page."""
        path = request.url.path
        nav = [{"href": with_params(href, lang_param(lang)), "label": t(lang, key),
                "current": path == href or path.startswith(href + "/")
                or (href == "/events" and path == "/")}
               for href, key in NAVIGATION]
        switches = [{"lang": other, "href": switch_language_url(request, other),
                     "label": t(other, "site.language_name")}
                    for other in LANGUAGES if other != lang]
        return {"_": partial(t, lang), "lang": lang, "region": self.ctx.region.name,
                "base_url": self.base_url, "nav": nav, "switches": switches,
                "home": with_params("/", lang_param(lang)), "path": path}

    def render(self, request: Request, template: str, lang: str, **params: Any) -> str:
        return self.env.get_template(template).render(**self.common(request, lang), **params)

    def page(self, request: Request, template: str, lang: str, *, status_code: int = 200,
             headers: dict[str, str] | None = None, **params: Any) -> HTMLResponse:
        return HTMLResponse(self.render(request, template, lang, **params),
                            status_code=status_code, headers=headers)

    def problem(self, request: Request, lang: str, message: str, *,
                status_code: int = 400) -> HTMLResponse:
        """A page that says what was wrong (already in `lang`), in the layout, never a 500."""
        return self.page(request, "problem.html", lang, status_code=status_code,
                         title=t(lang, "site.problem.title"), message=message)
