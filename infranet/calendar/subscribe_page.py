"""The `/calendar` page: pick districts, categories and audiences, get the feed's URLs.

One self-contained HTML page, its words from the catalogs (`calendar.page.*`); the route
that serves it is in `infranet.calendar.http`.
"""

from __future__ import annotations

import html

from infranet.calendar.event_input import AUDIENCES, CATEGORIES, audience_label, category_label
from infranet.calendar.feed_filter import FeedFilter
from infranet.context import AppContext
from infranet.i18n import t


def render_page(ctx: AppContext, flt: FeedFilter, lang: str, error: str = "") -> str:
    esc = html.escape

    def text(key: str) -> str:
        return t(lang, f"calendar.page.{key}")

    base = ctx.settings.http.public_base_url
    query = flt.query_string()
    feed_url = f"{base}/calendar.ics" + (f"?{query}" if query else "")
    webcal = "webcal://" + feed_url.split("://", 1)[1]

    def box(name: str, value: str, label: str, checked: bool) -> str:
        mark = " checked" if checked else ""
        return (f'<label><input type="checkbox" name="{esc(name)}" value="{esc(value)}"{mark}> '
                f"{esc(label)}</label>")

    area_boxes = []
    for sub in ctx.region.subregions:
        inner = " ".join(box("area", p.slug, p.name, p.slug in flt.areas) for p in sub.children)
        area_boxes.append(f"<p><b>{box('area', sub.slug, sub.name, sub.slug in flt.areas)}</b><br>"
                          f"{inner}</p>")
    cats = " ".join(box("category", c, category_label(c, lang), c in flt.categories) for c in CATEGORIES)
    auds = " ".join(box("audience", a, audience_label(a, lang), a in flt.audiences) for a in AUDIENCES)
    other = "en" if lang == "pl" else "pl"
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{esc(text("title"))}</title>
<style>body{{font-family:sans-serif;max-width:52rem;margin:1rem auto;padding:0 1rem}}
label{{margin-right:.8rem;white-space:nowrap}} code{{word-break:break-all}} .err{{color:#a00}}</style>
</head><body>
<p style="float:right"><a href="/calendar?lang={other}">{esc(text("other"))}</a></p>
<h1>{esc(text("title"))}</h1>
<p>{esc(ctx.region.name)}. {esc(text("intro"))}</p>
{f'<p class="err">{esc(error)}</p>' if error else ''}
<form method="get" action="/calendar"><input type="hidden" name="lang" value="{lang}">
<h2>{esc(text("areas"))}</h2>{''.join(area_boxes)}
<h2>{esc(text("categories"))}</h2><p>{cats}</p>
<h2>{esc(text("audiences"))}</h2><p>{auds}</p>
<p><button type="submit">{esc(text("show"))}</button></p></form>
<h2>{esc(text("feed"))}</h2>
<p><code id="feed">{esc(feed_url)}</code></p>
<p><a href="{esc(webcal)}">{esc(text("webcal"))}</a> · <a href="{esc(feed_url)}">ICS</a></p>
<ul><li>{esc(text("google"))}</li><li>{esc(text("outlook"))}</li><li>{esc(text("thunderbird"))}</li></ul>
</body></html>"""
