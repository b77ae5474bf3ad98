"""/support: recording support given to an organisation, and `/support list [query]`, the
members' register of who supported whom (or of one client: a KRS, NIP or words of a name).

The form: who (a KRS or NIP, then the name; the name of an informal group; or "#12", the
client of a referral the organisation accepted, which the record then stands for) → service
(buttons) → powiat (the organisation's own as buttons, or typed) → day (today, yesterday
or typed) → a preview with the earlier support other organisations gave the same client
with the same service (network/support.py) → Save / Cancel. The two buttons carry the
fingerprint of the draft they were shown with: after « Wstecz and a new answer, or once
the form has ended, an old button says it is out of date and changes nothing. Nothing is
stored before Save; a Cancel after a duplicate warning records only that decision.

Callback data (prefix `sup`): `sup:s:<service>`, `sup:d:<district index>`, `sup:day:<0|1>`,
`sup:save|drop:<fingerprint>` inside the form; `sup:list:<page>:<query>` outside it.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot.common import (
    END,
    Command,
    Html,
    Turn,
    cb,
    check_length,
    conversation,
    esc,
    form,
    handler,
    int_part,
    rows_of,
)
from infranet.bot.handlers.directory import service_label
from infranet.bot.handlers.event_ui import district_at, district_index, district_label, district_question
from infranet.bot.handlers.referral_views import others_text
from infranet.calendar.dateparse import parse_date
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import format_date
from infranet.network.clients import is_pesel, looks_like_identifier, parse_identifier
from infranet.network.org_profile import get_profile
from infranet.network.orgs import SERVICES
from infranet.network.support import (
    NAME_MAX,
    SupportInput,
    add_support,
    check_date,
    drop_support,
    local_today,
    preview_support,
    referred_client,
)
from infranet.network.support_list import SupportPage, list_support
from infranet.region import District, UnknownDistrict
from infranet.validation import clean_text

COMMANDS = [Command("support", "member")]
NAME = "support"
CLIENT, CLIENT_NAME, SERVICE, DISTRICT, DAY, CONFIRM = (
    "sup.client", "sup.name", "sup.service", "sup.district", "sup.day", "sup.confirm")
PAGE = 10


@handler(access="member", chat="private")
async def cmd_support(turn: Turn) -> object:
    member = turn.who.member
    if member is None or member.organisation_id is None:
        turn.say("referrals.no_org")
        return END
    turn.user_data[NAME] = {}
    turn.say("bot.support.ask_client")
    return CLIENT


_REFERRAL = re.compile(r"^(?:#|skierowanie\s*#?|referral\s*#?)\s*(\d{1,9})$", re.IGNORECASE)


@handler(access="member", chat="private")
async def on_client(turn: Turn) -> object:
    text = check_length(turn.text, NAME_MAX)
    data = form(turn, NAME)
    if is_pesel(text):
        raise ValidationFailed("support.no_persons")
    referral = _REFERRAL.match(text)
    if referral:  # "#12": the client of a referral this organisation accepted
        client = await referred_client(turn.session, turn.actor, int(referral.group(1)))
        data.update(krs=client.krs, nip=client.nip, kind=client.client_kind,
                    client=client.client_name, referral_id=client.referral_id)
        _ask_service(turn, data)
        return SERVICE
    if looks_like_identifier(text):
        krs, nip = parse_identifier(text)  # ValidationFailed: the step is asked again
        data.update(krs=krs, nip=nip, kind="ngo", referral_id=None)
        turn.say("bot.support.ask_name")
        return CLIENT_NAME
    data.update(krs=None, nip=None, kind="group", referral_id=None,
                client=clean_text(text, "client_name", NAME_MAX, required=True))
    _ask_service(turn, data)
    return SERVICE


@handler(access="member", chat="private")
async def on_client_name(turn: Turn) -> object:
    data = form(turn, NAME)
    data["client"] = clean_text(check_length(turn.text, NAME_MAX), "client_name", NAME_MAX,
                                required=True)
    _ask_service(turn, data)
    return SERVICE


def _ask_service(turn: Turn, data: dict[str, Any]) -> None:
    turn.say("bot.support.ask_service", rows_of(
        [(service_label(code, turn.lang), cb("sup", "s", code)) for code in SERVICES]),
        client=data.get("client"))


async def _own_powiaty(turn: Turn) -> list[District]:
    """The powiaty the member's organisation serves (a subregion's, the region's), first 8."""
    member = turn.who.member
    if member is None or member.organisation_id is None:
        return []
    profile = await get_profile(turn.session, turn.actor, member.organisation_id)
    region = turn.ctx.region
    found: list[District] = []
    for slug in profile.district_slugs:
        district = region.by_slug.get(slug)
        if district is None:
            continue
        for powiat in [district] if district.kind == "powiat" else [
                d for d in district.descendants if d.kind == "powiat"]:
            if powiat not in found:
                found.append(powiat)
    return found[:8]


def _powiat_buttons(turn: Turn, districts: list[District]) -> list[list[tuple[str, str]]]:
    return rows_of([(district_label(turn, d), cb("sup", "d", district_index(turn.ctx, d)))
                    for d in districts])


@handler(access="member", chat="private")
async def on_service(turn: Turn) -> object:
    code = turn.data[2] if len(turn.data) > 2 else ""
    data = form(turn, NAME)
    if code not in SERVICES or "client" not in data:
        turn.toast(turn.t("bot.button_expired"))
        return None
    data["service"] = code
    turn.edit(turn.t("bot.support.ask_district", service=service_label(code, turn.lang)),
              _powiat_buttons(turn, await _own_powiaty(turn)))
    return DISTRICT


async def _district_chosen(turn: Turn, district: District) -> object:
    """A powiat moves on to the day; a subregion or the region asks which of its powiaty."""
    data = form(turn, NAME)
    if district.kind != "powiat":
        powiaty = [d for d in district.descendants if d.kind == "powiat"]
        turn.edit(turn.t("bot.support.which_powiat", name=district.name),
                  _powiat_buttons(turn, powiaty))
        return None
    data["district"] = district.slug
    turn.edit(turn.t("bot.support.ask_day", district=district.name),
              [[(turn.t("bot.support.today"), cb("sup", "day", 0)),
                (turn.t("bot.support.yesterday"), cb("sup", "day", 1))]])
    return DAY


@handler(access="member", chat="private")
async def on_district_text(turn: Turn) -> object:
    query = check_length(turn.text, 120)
    try:
        district = turn.ctx.region.match(query)
    except UnknownDistrict as exc:
        text, buttons = district_question(
            turn, exc, "sup", pick=lambda d: cb("sup", "d", district_index(turn.ctx, d)))
        turn.reply(text, buttons)
        return None
    return await _district_chosen(turn, district)


@handler(access="member", chat="private")
async def on_district_button(turn: Turn) -> object:
    district = district_at(turn.ctx, turn.data[2] if len(turn.data) > 2 else None)
    if district is None or "service" not in form(turn, NAME):
        turn.toast(turn.t("bot.button_expired"))
        return None
    return await _district_chosen(turn, district)


_YEAR = re.compile(r"\d{4}")


def _past_day(turn: Turn, text: str) -> date:
    """A day as people write it, in the past: "5.11" written on 3.12 is this year's, "20.12"
    written on 3.12 last year's (the calendar's reading looks ahead; support looks back)."""
    today = local_today(turn.ctx)
    day = parse_date(text, today, lang=turn.lang, allow_past=True)
    if day > today and not _YEAR.search(text) and any(c.isdigit() for c in text):
        try:
            day = day.replace(year=day.year - 1)
        except ValueError:  # 29 February
            day = day - timedelta(days=365)
    return check_date(turn.ctx, day)


@handler(access="member", chat="private")
async def on_day_text(turn: Turn) -> object:
    data = form(turn, NAME)
    data["day"] = _past_day(turn, check_length(turn.text, 60))
    return await _preview(turn, data, edit=False)


@handler(access="member", chat="private")
async def on_day_button(turn: Turn) -> object:
    back = int_part(turn.data, 2)
    data = form(turn, NAME)
    if back not in (0, 1) or "district" not in data:
        turn.toast(turn.t("bot.button_expired"))
        return None
    data["day"] = local_today(turn.ctx) - timedelta(days=back or 0)
    return await _preview(turn, data, edit=True)


def _input(data: dict[str, Any]) -> SupportInput:
    return SupportInput(client_name=data.get("client"), krs=data.get("krs"), nip=data.get("nip"),
                        service=data.get("service", ""), district=data.get("district", ""),
                        given_on=data.get("day"), client_kind=data.get("kind"),
                        referral_id=data.get("referral_id"), source="bot")


async def _preview(turn: Turn, data: dict[str, Any], *, edit: bool) -> object:
    """The summary, the duplicate warning when there is one, and the two buttons bound to
    exactly this draft."""
    preview = await preview_support(turn.session, turn.ctx, turn.actor, _input(data))
    draft = preview.draft
    data["fp"] = draft.fingerprint
    data["warned"] = bool(preview.duplicates)
    ids = f", KRS {draft.krs}" if draft.krs else f", NIP {draft.nip}" if draft.nip else ""
    text = turn.t("bot.support.summary", org=draft.organisation, client=draft.client_name, ids=ids,
                  service=service_label(draft.service, turn.lang), district=draft.district_name,
                  day=format_date(draft.given_on, turn.lang, weekday=False))
    if preview.duplicates:
        warning = turn.t("bot.support.duplicate", client=draft.client_name,
                         service=service_label(draft.service, turn.lang),
                         days=turn.ctx.settings.referrals.duplicate_window_days,
                         others=others_text(turn.ctx, preview.duplicates, turn.lang))
        text = Html(f"{text}\n\n{warning}\n\n{turn.t('bot.support.duplicate_ask')}")
        buttons = [[(turn.t("bot.support.save_anyway"), cb("sup", "save", draft.fingerprint))],
                   [(turn.t("bot.support.drop"), cb("sup", "drop", draft.fingerprint))]]
    else:
        buttons = [[(turn.t("bot.support.save"), cb("sup", "save", draft.fingerprint))],
                   [(turn.t("bot.cancel"), cb("sup", "drop", draft.fingerprint))]]
    if edit:
        turn.edit(text, buttons)
    else:
        turn.reply(text, buttons)
    return CONFIRM


@handler(access="member", chat="private")
async def on_confirm(turn: Turn) -> object:
    data = form(turn, NAME)
    choice = turn.data[1] if len(turn.data) > 1 else ""
    shown = turn.data[2] if len(turn.data) > 2 else ""
    if shown != data.get("fp") or choice not in ("save", "drop"):
        turn.toast(turn.t("bot.support.stale"))
        return None
    if choice == "drop":
        turn.user_data.pop(NAME, None)
        if data.get("warned"):
            await drop_support(turn.session, turn.ctx, turn.actor, _input(data))
            turn.edit(turn.t("bot.support.dropped"))
        else:
            turn.edit(turn.t("bot.cancelled"))
        return END
    row = await add_support(turn.session, turn.ctx, turn.actor, _input(data),
                            warned=bool(data.get("warned")), expected=shown)
    turn.user_data.pop(NAME, None)
    turn.edit(turn.t("bot.support.saved", id=row.id, client=row.client_name,
                     service=service_label(row.service, turn.lang)))
    return END


# --- outside the form: the register and out-of-date buttons -------------------------


def _entry_line(turn: Turn, page: SupportPage, index: int) -> str:
    entry = page.entries[index]
    ids = f" (KRS {entry.krs})" if entry.krs else f" (NIP {entry.nip})" if entry.nip else ""
    what = service_label(entry.service, turn.lang) if entry.service else turn.t("bot.support.not_stated")
    where = entry.district or turn.t("bot.support.not_stated")
    line = (f"{esc(format_date(entry.given_on, turn.lang, weekday=False))} · {esc(entry.organisation)}"
            f" → <b>{esc(entry.client_name)}</b>{esc(ids)} · {esc(what)} · {esc(where)}")
    if entry.referral_id and not entry.record_id:
        line += " · " + turn.t("bot.support.via_referral", id=entry.referral_id)
    return line


def _list_cb(page: int, query: str) -> str:
    """`sup:list:<page>:<query>`, the query cut to keep the data within 64 bytes."""
    head = f"sup:list:{page}:"
    cut = query.replace(":", " ")
    while len((head + cut).encode()) > 64:
        cut = cut[:-1]
    return head + cut


async def _show_list(turn: Turn, page_no: int, query: str, *, edit: bool) -> None:
    page_no = max(0, min(page_no, 10_000))
    page = await list_support(turn.session, turn.ctx, turn.actor, limit=PAGE, offset=page_no * PAGE,
                              client=query or None)
    if not page.entries and page_no == 0:
        if query:
            turn.say("bot.support.list_none", query=query)
        else:
            turn.say("bot.support.list_empty")
        return
    pages = max(1, (page.total + PAGE - 1) // PAGE)
    title = turn.t("bot.support.list_title", count=page.total)
    blocks = [Html(f"{title} · {esc(query)}") if query else title,
              *(_entry_line(turn, page, i) for i in range(len(page.entries))),
              turn.t("bot.orgs.page", page=min(page_no + 1, pages), pages=pages)]
    nav = []
    if page_no > 0:
        nav.append((turn.t("bot.prev"), _list_cb(page_no - 1, query)))
    if page_no + 1 < pages:
        nav.append((turn.t("bot.next"), _list_cb(page_no + 1, query)))
    text = Html("\n\n".join(str(b) for b in blocks))
    if edit:
        turn.edit(text, [nav] if nav else None)
    else:
        turn.reply(text, [nav] if nav else None)


@handler(access="member", chat="private", writes=False)
async def cmd_support_list(turn: Turn) -> None:
    """`/support list [KRS, NIP or words of a name]`."""
    await _show_list(turn, 0, " ".join(turn.args[1:])[:100].strip(), edit=False)


@handler(access="member", chat="private", writes=False)
async def on_outside_button(turn: Turn) -> None:
    """`sup:list:<page>:<query>`; any other `sup:` button here belongs to a form that has
    ended or moved on: it says so and changes nothing."""
    if turn.data[1:2] == ["list"]:
        page = int_part(turn.data, 2)
        if page is not None:
            await _show_list(turn, page, ":".join(turn.data[3:])[:100].strip(), edit=True)
            return
    turn.toast(turn.t("bot.support.stale"))


def _conversation(ctx: AppContext) -> BaseHandler[Any, Any, Any]:
    text = filters.TEXT & ~filters.COMMAND
    return conversation(ctx, NAME, [CommandHandler("support", cmd_support)], {
        CLIENT: [MessageHandler(text, on_client)],
        CLIENT_NAME: [MessageHandler(text, on_client_name)],
        SERVICE: [CallbackQueryHandler(on_service, pattern=r"^sup:s:")],
        DISTRICT: [MessageHandler(text, on_district_text),
                   CallbackQueryHandler(on_district_button, pattern=r"^sup:d:")],
        DAY: [MessageHandler(text, on_day_text),
              CallbackQueryHandler(on_day_button, pattern=r"^sup:day:")],
        CONFIRM: [CallbackQueryHandler(on_confirm, pattern=r"^sup:(save|drop):")],
    })


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    listing = filters.Regex(r"^/support(@\w+)?\s+(list|lista)\b")
    return [CommandHandler("support", cmd_support_list, filters=listing),
            _conversation(ctx),
            CallbackQueryHandler(on_outside_button, pattern=r"^sup:")]


__all__ = ["COMMANDS", "handlers"]
