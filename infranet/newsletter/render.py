"""Jinja2 templates: the issue (HTML with inlined CSS, plain text), the
confirmation e-mail and the web pages, in Polish and English.

`[newsletter] template_dir` is searched before the shipped templates, so an
organisation can brand its newsletter by overriding one file. HTML templates
are autoescaped; plain-text ones are not (they are never parsed as HTML), and
header values never come from templates.

Rendering and CSS inlining run once per item and once per layout (see
IssueRenderer); a reader's message is assembled from those pieces, with the
personal parts (unsubscribe and preferences links, the address) filled into
markers, so the cost per subscriber is a few joins whatever their preferences.
"""

from __future__ import annotations

import html as html_lib
import re
from functools import partial
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

from infranet.context import AppContext
from infranet.i18n import t
from infranet.newsletter import content as content_mod

# Room kept for the layout around the items (header, note, feeds, footer, inlined CSS)
# when deciding whether a reader's events fit under checks.HTML_LIMIT.
LAYOUT_ALLOWANCE = 24 * 1024


PLACEHOLDERS = {"unsubscribe": "@@INFRANET_UNSUBSCRIBE@@", "preferences": "@@INFRANET_PREFERENCES@@",
                "email": "@@INFRANET_EMAIL@@"}


PRIVACY_PARTS = ("controller", "contact", "purpose", "legal_basis", "retention", "rights")



def privacy_notice(ctx: AppContext, lang: str) -> list[tuple[str, str]]:
    """(label, text) pairs of the RODO art. 13 notice: `[newsletter] privacy_*` where set,
    else the default in `lang`."""
    settings = ctx.settings
    contact = settings.smtp.reply_to or settings.smtp.from_address
    values = {"title": settings.newsletter.title, "region": ctx.region.name,
              "contact": contact, "days": settings.newsletter.confirm_ttl_days}
    notice = []
    for part in PRIVACY_PARTS:
        configured = getattr(settings.newsletter, f"privacy_{part}", None)
        text = configured or t(lang, f"newsletter.privacy.{part}", **values)
        notice.append((t(lang, f"newsletter.privacy.{part}_label"), text))
    return notice


def make_environment(template_dir: Path | None) -> Environment:
    loaders: list[Any] = []
    if template_dir is not None:
        loaders.append(FileSystemLoader(str(template_dir)))
    loaders.append(PackageLoader("infranet.newsletter", "templates"))
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


class Renderer:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.env = make_environment(ctx.settings.newsletter.template_dir)
        self.inliner = css_inline.CSSInliner(keep_style_tags=True, keep_at_rules=True,
                                             load_remote_stylesheets=False)
        self._issues: dict[Any, IssueRenderer] = {}

    def _common(self, lang: str) -> dict[str, Any]:
        settings = self.ctx.settings
        return {"_": partial(t, lang), "lang": lang,
                "title": content_mod.newsletter_title(self.ctx, lang),
                "region": self.ctx.region.name, "base_url": settings.http.public_base_url,
                "privacy_url": f"{settings.http.public_base_url}/newsletter/privacy",
                "privacy": privacy_notice(self.ctx, lang)}

    def render(self, name: str, lang: str, **params: Any) -> str:
        return self.env.get_template(name).render(**self._common(lang), **params)

    def html_email(self, name: str, lang: str, **params: Any) -> str:
        return self.inliner.inline(self.render(name, lang, **params))

    # --- issues ---------------------------------------------------------------------

    def issue_variant(self, issue_id: int | None, content: dict[str, Any],
                      selection: content_mod.Selection, lang: str, *,
                      web: bool = False, personal: dict[str, str] | None = None) -> tuple[str, str]:
        """(text, html) of the items in `selection`; the personal links from `personal`
        (keys unsubscribe, preferences, email), else left as placeholders."""
        return self.issue(issue_id, content, lang, web).render(selection, personal)

    def issue(self, issue_id: int | None, content: dict[str, Any], lang: str,
              web: bool = False) -> IssueRenderer:
        """The issue's renderer in a language (kept per issue id; rebuilt without one)."""
        key = (issue_id, lang, web)
        issue = self._issues.get(key) if issue_id is not None else None
        if issue is None:
            issue = IssueRenderer(self, issue_id, content, lang, web)
            if issue_id is not None:
                if len(self._issues) > 16:
                    self._issues.clear()
                self._issues[key] = issue
        return issue


_MARKER = re.compile(r"(@@INFRANET_[A-Z_]+@@)")
SECTION_MARKERS = {"events": "@@INFRANET_SECTION_EVENTS@@",
                   "trainings": "@@INFRANET_SECTION_TRAININGS@@",
                   "organisations": "@@INFRANET_SECTION_ORGANISATIONS@@"}


class IssueRenderer:
    """One issue in one language, assembled per reader from fragments.

    Each item (event, training, organisation, day and area heading) is rendered
    with the macros of issue_items.html/.txt and its CSS inlined once; the
    layout (issue.html/.txt) is rendered and inlined once per combination of
    non-empty sections. A reader's message is then only string joins, however
    many different preference sets the subscribers have.
    """

    def __init__(self, renderer: Renderer, issue_id: int | None, content: dict[str, Any],
                 lang: str, web: bool) -> None:
        self.renderer = renderer
        self.lang = lang
        self.web = web
        self.data = content_mod.prepare(content, renderer.ctx, lang)
        common = renderer._common(lang)
        self.html_items = renderer.env.get_template("issue_items.html").make_module(common)
        self.text_items = renderer.env.get_template("issue_items.txt").make_module(common)
        self.css = renderer.render("issue.css", lang)
        base = renderer.ctx.settings.http.public_base_url
        self.links = {"unsubscribe": PLACEHOLDERS["unsubscribe"],
                      "preferences": PLACEHOLDERS["preferences"], "email": PLACEHOLDERS["email"],
                      "web": (f"{base}/newsletter/archive/{issue_id}"
                              if issue_id and content.get("archived", True) else None),
                      "archive": f"{base}/newsletter/archive",
                      "subscribe": f"{base}/newsletter/subscribe"}
        self._fragments: dict[tuple[str, Any], tuple[str, str]] = {}
        self._layouts: dict[tuple[Any, ...], tuple[list[str], list[str]]] = {}

    def _fragment(self, kind: str, key: Any, value: Any) -> tuple[str, str]:
        found = self._fragments.get((kind, key))
        if found is None:
            html = str(getattr(self.html_items, kind)(value))
            found = (self.renderer.inliner.inline_fragment(html, self.css),
                     str(getattr(self.text_items, kind)(value)))
            self._fragments[(kind, key)] = found
        return found

    def _layout(self, note: bool, events: bool, trainings: bool,
                orgs: bool, feed_query: str = "") -> tuple[list[str], list[str]]:
        """The layout as token lists: literal text and the markers to fill in. The "only
        your districts" link is the feed of the reader's own choice (`feed_query`); there
        are as many of those as distinct preference sets, a few dozen."""
        key = (note, events, trainings, orgs, feed_query)
        found = self._layouts.get(key)
        if found is None:
            sections = {"events": SECTION_MARKERS["events"] if events else "",
                        "trainings": SECTION_MARKERS["trainings"] if trainings else "",
                        "organisations": SECTION_MARKERS["organisations"] if orgs else ""}
            base = self.renderer.ctx.settings.http.public_base_url
            feeds = [dict(f, url=f"{base}/calendar.ics?{feed_query}")
                     if f["kind"] == "picker" and feed_query else f for f in self.data["feeds"]]
            params = {"note": self.data["note"] if note else None, "feeds": feeds,
                      "period": self.data["period"], "links": self.links, "web": self.web,
                      "sections": sections}
            found = (_MARKER.split(self.renderer.render("issue.txt", self.lang, **params)),
                     _MARKER.split(self.renderer.html_email("issue.html", self.lang, **params)))
            self._layouts[key] = found
        return found

    def parts(self, selection: content_mod.Selection) -> tuple[list[str], list[str]]:
        """(text, html) for a selection as alternating lists: literal text at even
        positions, the name of a personal value (a key of PLACEHOLDERS) at odd ones.

        As in `render()`, markers are looked for in the layout only: one typed into an
        item (an event title, say) sits inside a section's text and stays literal. The
        sender keeps these lists per distinct selection and fills in each reader's
        values (see compose).
        """
        events = self.data["events"]
        shown, more = self._fit_events(selection.events)
        days: dict[Any, dict[tuple[int, str], list[int]]] = {}
        for i in shown:
            e = events[i]
            days.setdefault(e["day"], {}).setdefault(e["area"], []).append(i)
        event_parts: list[tuple[str, str]] = []
        for day in sorted(days):
            areas = days[day]
            first = events[next(iter(areas.values()))[0]]
            event_parts.append(self._fragment("day", day, first["day_label"]))
            for area in sorted(areas):
                event_parts.append(self._fragment("area", area, area[1]))
                event_parts.extend(self._fragment("event", i, events[i]) for i in areas[area])
        if more:
            event_parts.append(self._more_events(more, selection.feed_query))
        training_parts = [self._fragment("training", i, self.data["trainings"][i])
                          for i in selection.trainings]
        org_parts = [self._fragment("organisation", i, self.data["organisations"][i])
                     for i in selection.organisations]
        text_tokens, html_tokens = self._layout(selection.note and bool(self.data["note"]),
                                                bool(event_parts), bool(training_parts),
                                                bool(org_parts), selection.feed_query)
        html_values = {SECTION_MARKERS["events"]: "".join(p[0] for p in event_parts),
                       SECTION_MARKERS["trainings"]: "".join(p[0] for p in training_parts),
                       SECTION_MARKERS["organisations"]: "".join(p[0] for p in org_parts)}
        text_values = {SECTION_MARKERS["events"]: "".join(p[1] for p in event_parts).strip("\n"),
                       SECTION_MARKERS["trainings"]: "".join(p[1] for p in training_parts).strip("\n"),
                       SECTION_MARKERS["organisations"]: "".join(p[1] for p in org_parts).strip("\n")}
        return _fill_sections(text_tokens, text_values), _fill_sections(html_tokens, html_values)

    def _fit_events(self, chosen: tuple[int, ...]) -> tuple[list[int], dict[tuple[int, str], int]]:
        """The events a copy shows, and per area how many it leaves to the calendar.

        A copy is checked for size on its own (`checks.HTML_LIMIT`: Gmail clips longer
        mail), so a one-district reader's copy is never cut for the region's sake. When a
        reader's events would not fit, the copy keeps the first events of each area, as
        many per area as fit, and links to the rest."""
        from infranet.newsletter.checks import HTML_LIMIT

        budget = HTML_LIMIT - LAYOUT_ALLOWANCE
        events = self.data["events"]
        size = {i: len(self._fragment("event", i, events[i])[0].encode()) for i in chosen}
        if sum(size.values()) <= budget:
            return list(chosen), {}
        by_area: dict[tuple[int, str], list[int]] = {}
        for i in chosen:
            by_area.setdefault(events[i]["area"], []).append(i)
        per_area = max(len(v) for v in by_area.values())
        while per_area > 1:
            per_area -= 1
            if sum(size[i] for v in by_area.values() for i in v[:per_area]) <= budget:
                break
        kept = {i for v in by_area.values() for i in v[:per_area]}
        more = {area: len(v) - per_area for area, v in by_area.items() if len(v) > per_area}
        return [i for i in chosen if i in kept], more

    def _more_events(self, more: dict[tuple[int, str], int], feed_query: str) -> tuple[str, str]:
        """The closing lines of a shortened events section: per area, how many more events
        the calendar has, with its link."""
        base = self.renderer.ctx.settings.http.public_base_url
        url = f"{base}/calendar.ics?{feed_query}" if feed_query else f"{base}/calendar"
        lines = [t(self.lang, "newsletter.more_events", area=area[1], count=count)
                 for area, count in sorted(more.items())]
        heading = t(self.lang, "newsletter.more_events_heading")
        html = (f'<p class="meta">{html_lib.escape(heading)}</p><ul>'
                + "".join(f"<li>{html_lib.escape(line)}</li>" for line in lines)
                + f'</ul><p class="meta"><a href="{html_lib.escape(url)}">'
                f"{html_lib.escape(url)}</a></p>")
        text = "\n" + heading + "\n" + "".join(f"- {line}\n" for line in lines) + url + "\n"
        return self.renderer.inliner.inline_fragment(html, self.css), text

    def render(self, selection: content_mod.Selection,
               personal: dict[str, str] | None = None) -> tuple[str, str]:
        """(text, html) for a selection; `personal` fills the unsubscribe/preferences/email
        markers (escaped for HTML); without it they stay as markers (web version: none)."""
        text_parts, html_parts = self.parts(selection)
        if personal is None:
            text_values = html_values = PLACEHOLDERS
        else:
            text_values = personal
            html_values = {name: html_lib.escape(value) for name, value in personal.items()}
        text = "".join([tok if i % 2 == 0 else text_values[tok] for i, tok in enumerate(text_parts)])
        html = "".join([tok if i % 2 == 0 else html_values[tok] for i, tok in enumerate(html_parts)])
        return text, html


_PERSONAL = {marker: name for name, marker in PLACEHOLDERS.items()}


def _fill_sections(tokens: list[str], sections: dict[str, str]) -> list[str]:
    """Layout tokens (literal text at even positions, markers at odd ones) with the
    sections filled in and merged into the literal runs; personal markers stay apart,
    as their names, at odd positions."""
    out: list[str] = []
    run: list[str] = []
    for i, tok in enumerate(tokens):
        if i % 2 == 0:
            run.append(tok)
        elif tok in _PERSONAL:
            out += ["".join(run), _PERSONAL[tok]]
            run = []
        else:
            run.append(sections.get(tok, tok))
    out.append("".join(run))
    return out
