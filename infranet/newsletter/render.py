"""Jinja2 templates: the issue (HTML with inlined CSS, plain text), the
confirmation e-mail and the web pages, in Polish and English.

`[newsletter] template_dir` is searched before the shipped templates, so an
organisation can brand its newsletter by overriding one file. HTML templates
are autoescaped; plain-text ones are not (they are never parsed as HTML), and
header values never come from templates.

Personalised parts (unsubscribe and preferences links, the address) are
placeholders in the cached rendering of each distinct selection and language,
filled in per message: rendering and CSS inlining run once per variant, not
once per subscriber.
"""

from __future__ import annotations

import html as html_lib
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

PLACEHOLDERS = {"unsubscribe": "@@INFRANET_UNSUBSCRIBE@@", "preferences": "@@INFRANET_PREFERENCES@@",
                "email": "@@INFRANET_EMAIL@@"}


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
        self._variants: dict[Any, tuple[str, str]] = {}

    def _common(self, lang: str) -> dict[str, Any]:
        settings = self.ctx.settings
        return {"_": partial(t, lang), "lang": lang, "title": settings.newsletter.title,
                "region": self.ctx.region.name, "base_url": settings.http.public_base_url}

    def render(self, name: str, lang: str, **params: Any) -> str:
        return self.env.get_template(name).render(**self._common(lang), **params)

    def html_email(self, name: str, lang: str, **params: Any) -> str:
        return self.inliner.inline(self.render(name, lang, **params))

    # --- issues ---------------------------------------------------------------------

    def issue_variant(self, issue_id: int | None, content: dict[str, Any],
                      selection: content_mod.Selection, lang: str, *,
                      web: bool = False) -> tuple[str, str]:
        """(text, html) with placeholders for the personal links; cached per variant."""
        key = (issue_id, lang, selection, web)
        found = self._variants.get(key)
        if found is None:
            model = content_mod.view(content, selection, self.ctx, lang)
            base = self.ctx.settings.http.public_base_url
            links = {"unsubscribe": PLACEHOLDERS["unsubscribe"],
                     "preferences": PLACEHOLDERS["preferences"], "email": PLACEHOLDERS["email"],
                     "web": f"{base}/newsletter/archive/{issue_id}" if issue_id else None,
                     "archive": f"{base}/newsletter/archive",
                     "subscribe": f"{base}/newsletter/subscribe"}
            params = {**model, "links": links, "web": web}
            text = self.render("issue.txt", lang, **params)
            html = self.html_email("issue.html", lang, **params)
            found = (text, html)
            if len(self._variants) > 2000:
                self._variants.clear()
            self._variants[key] = found
        return found

    @staticmethod
    def personalise(text: str, html: str, *, unsubscribe: str, preferences: str,
                    email: str) -> tuple[str, str]:
        values = {"unsubscribe": unsubscribe, "preferences": preferences, "email": email}
        for name, marker in PLACEHOLDERS.items():
            text = text.replace(marker, values[name])
            html = html.replace(marker, html_lib.escape(values[name]))
        return text, html
