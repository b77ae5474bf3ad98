"""What the event and training screens share: dates as people read them, district
buttons and questions, contacts, shortened fields, edits that change something, and an
occurrence of a series named in a button.

Apart from the forms and listings that use them (`event_form`, `event_edit`,
`event_listings`, `trainings`), so that each of those imports one small module of
presentation helpers rather than another conversation.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from typing import Any

from telegram import Message

from infranet.bot.common import Html, Turn, cb, rows_of
from infranet.calendar.dateparse import local_today
from infranet.calendar.event_links import event_url
from infranet.calendar.wallclock import all_day_span
from infranet.context import AppContext
from infranet.i18n import format_span
from infranet.region import AmbiguousDistrict, District, UnknownDistrict


def today(turn: Turn) -> date:
    return local_today(turn.ctx.now(), turn.ctx.tz)


def when_text(ctx: AppContext, start: datetime | date, end: datetime | date, all_day: bool,
              lang: str) -> str:
    """"sobota, 5 grudnia 2026, 10:00–14:00" for stored (UTC) or form values."""
    if all_day:
        first = start if not isinstance(start, datetime) else start.astimezone(ctx.tz).date()
        last = end if not isinstance(end, datetime) else end.astimezone(ctx.tz).date()
        return format_span(*all_day_span(first, last, ctx.tz), ctx.tz, lang, all_day=True)
    assert isinstance(start, datetime) and isinstance(end, datetime)
    return format_span(start, end, ctx.tz, lang)


def occurrence_when(ctx: AppContext, start: datetime, end: datetime, all_day: bool, lang: str) -> str:
    return format_span(start, end, ctx.tz, lang, all_day=all_day)


def district_buttons(turn: Turn, prefix: str) -> list[list[tuple[str, str]]]:
    """First level: the whole region and each subregion."""
    region = turn.ctx.region
    rows: list[list[tuple[str, str]]] = [
        [(turn.t("bot.events.whole_region"), cb(prefix, "d", district_index(turn.ctx, region.root)))]]
    rows += rows_of([(d.name, cb(prefix, "sr", district_index(turn.ctx, d))) for d in region.subregions], 1)
    return rows


def subregion_buttons(turn: Turn, prefix: str, subregion: District) -> list[list[tuple[str, str]]]:
    rows: list[list[tuple[str, str]]] = [[(turn.t("bot.events.whole_subregion", name=subregion.name),
              cb(prefix, "d", district_index(turn.ctx, subregion)))]]
    rows += rows_of([(d.name, cb(prefix, "d", district_index(turn.ctx, d))) for d in subregion.children], 2)
    rows.append([(turn.t("bot.prev"), cb(prefix, "dback"))])
    return rows


def district_label(turn: Turn, district: District) -> str:
    """A district as a button says it: a city that is a powiat of its own says so, and a
    powiat says "powiat", so that "Olsztyn" offers two buttons that cannot be confused."""
    if district.kind == "powiat":
        key = "bot.district.city" if district.is_city else "bot.district.powiat"
        return turn.t(key, name=district.name)
    return district.name


def district_question(turn: Turn, exc: UnknownDistrict, prefix: str,
                      pick: Any = None) -> tuple[Html, list[list[tuple[str, str]]]]:
    """The answer to a district the region does not know as typed, with buttons: the
    districts a name may mean ("Olsztyn": the city or the powiat), the close matches of a
    typo, or for a place outside the region, the whole region and its subregions.
    `pick(district)` is the callback data of choosing a district (default `prefix:d:<i>`,
    the form's district step; a subregion then opens its powiaty there)."""
    def choose(district: District) -> str:
        return pick(district) if pick else cb(prefix, "d", district_index(turn.ctx, district))

    region = turn.ctx.region
    if isinstance(exc, AmbiguousDistrict):
        return (turn.t("bot.district.which", query=exc.query),
                [[(district_label(turn, d), choose(d))] for d in exc.suggestions])
    if exc.outside:
        text = turn.t("bot.district.outside", query=exc.query, region=region.name)
        if pick is None:
            return text, district_buttons(turn, prefix)
        return text, [[(turn.t("bot.events.whole_region"), choose(region.root))],
                      *[[(d.name, choose(d))] for d in region.subregions]]
    return (turn.t("bot.district.did_you_mean", query=exc.query),
            [[(district_label(turn, d), choose(d))] for d in exc.suggestions])


def district_index(ctx: AppContext, district: District) -> int:
    return ctx.region.districts.index(district)


def district_at(ctx: AppContext, value: str | None) -> District | None:
    """The district of a button (an index), or None for a forged value."""
    try:
        index = int(value or "")
    except ValueError:
        return None
    districts = ctx.region.districts
    return districts[index] if 0 <= index < len(districts) else None


def contact_of(org_email: str | None, phone: str | None) -> str:
    return ", ".join(x for x in (org_email, phone) if x) or "—"


def page_link(ctx: AppContext, event_id: int, title: str, limit: int = 120) -> Html:
    """The event's title (shortened) as a link to its page on the public site."""
    url = event_url(ctx.settings.http.public_base_url, event_id, title)
    return Html(f'<a href="{html.escape(url)}">{html.escape(shorten(title, limit), quote=False)}</a>')


def shorten(text: str, limit: int) -> str:
    """Listings show at most `limit` characters of a field, so that a page fits one message."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def would_not_change(turn: Turn, text: str, buttons: list[list[tuple[str, str]]]) -> bool:
    """Would this edit change nothing? (Telegram refuses such edits.)"""
    message = turn.update.callback_query.message if turn.update.callback_query else None
    if not isinstance(message, Message):  # absent, or too old for Telegram to show
        return False
    visible = html.unescape(re.sub(r"<[^>]+>", "", text))
    old_buttons = [[(b.text, b.callback_data or b.url or "") for b in row]
                   for row in (message.reply_markup.inline_keyboard if message.reply_markup else [])]
    new_buttons = [[(label, value) for label, value in row] for row in buttons]
    return getattr(message, "text", None) == visible and old_buttons == new_buttons


def edit_if_changed(turn: Turn, text: str, buttons: list[list[tuple[str, str]]]) -> None:
    """Edit the pressed message, unless that would change nothing (a second press of a
    button whose result is already on screen): then only answer the press."""
    if would_not_change(turn, text, buttons):
        turn.toast(turn.t("bot.button_expired"))
    else:
        turn.edit(text, buttons)


def occurrence_key(start: datetime) -> str:
    """An occurrence of a series in a button: its original start, UTC, to the minute."""
    return start.astimezone(UTC).strftime("%Y%m%d%H%M")


def occurrence_at(key: object) -> datetime | None:
    """The original start a button names (None: none, or a forged value)."""
    if not isinstance(key, str) or not (len(key) == 12 and key.isascii() and key.isdigit()):
        return None
    try:
        return datetime.strptime(key, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


def dates(turn: Turn, count: int) -> str:
    """"1 termin", "3 terminy", "12 terminów" (the catalog's plural forms)."""
    return turn.t("bot.count.dates", count=count)

