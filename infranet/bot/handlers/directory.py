"""/orgs [query]: the network's directory of support organisations, with contacts.

Answered in groups too (a listing) and to anyone. An organisation's e-mail and phone
are shown as it chose to publish them (`published_contacts`), except to approved members
and admins in a private chat: members cooperate and need every contact. Contact persons
(members' Telegram names) are shown to them only too. The role is the server's record
(`turn.who`), never anything the message says.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from infranet.bot.common import Command, Html, Turn, esc, handler, int_part, tr
from infranet.context import AppContext
from infranet.i18n import LANGUAGES, t
from infranet.network.membership import organisation_members
from infranet.network.orgs import ORG_TYPES, SERVICES, search_organisations
from infranet.network.public_contacts import published_contacts
from infranet.region import fold
from infranet.storage.models import Organisation

COMMANDS = [Command("orgs")]
PAGE = 8
MAX_RESULTS = 200

# Service codes (storage.orgs.SERVICES) and organisation type codes (ORG_TYPES) as people
# call them, for display and search. Acronyms that are names in Polish (LGD, COP, OWES...)
# keep them and say what they stand for.

# Other words that mean a service (folded stems).
_SERVICE_WORDS = {"szkolen": "training", "prawn": "legal-advice", "ksiegow": "accounting",
                  "grant": "grants", "pozyczk": "loans", "wolontar": "volunteering",
                  "unijn": "eu-funds", "ekonomi": "social-economy", "animac": "animation",
                  "rzecznict": "advocacy", "informac": "information", "finans": "financial-advice"}



def service_label(code: str, lang: str) -> str:
    return t(lang, f"org.service.{code}") if code in SERVICES else code


def type_label(code: str, lang: str, *, short: bool = False) -> str:
    """An organisation type as people call it ("fundusz lokalny", not `local-fund`);
    `short` keeps an acronym alone (for buttons)."""
    label = t(lang, f"org.type.{code}") if code in ORG_TYPES else code
    return label.split(" (")[0] if short else label


def expand_query(query: str) -> str:
    """Let people search by the Polish or English name of a service: those words are
    replaced by the service code that `search_organisations` matches."""
    text = fold(query)
    for code in SERVICES:
        for lang in LANGUAGES:
            folded = fold(service_label(code, lang))
            if folded and folded in text:
                text = text.replace(folded, code)
    words: list[str] = []
    for word in text.split():
        service = next((c for stem, c in _SERVICE_WORDS.items() if word.startswith(stem)), None)
        words.append(service or word)
    return " ".join(words)


async def find_organisations(turn: Turn, query: str, limit: int = MAX_RESULTS) -> list[Organisation]:
    return await search_organisations(turn.session, turn.ctx, expand_query(query), limit=limit)


async def describe(turn: Turn, org: Organisation, *, people: bool) -> str:
    """One organisation; `people` (an approved member in private) adds its unpublished
    contacts and its members' names."""
    lang = turn.lang
    title = f"<b>{esc(org.name)}</b>" + (f" ({esc(org.short_name)})" if org.short_name else "")
    lines = [f"{title} · {esc(type_label(org.type, lang))}"]
    if org.services:
        lines.append(f"{turn.t('bot.orgs.services')}: "
                     + esc(", ".join(service_label(s, lang) for s in org.services)))
    if org.districts:
        lines.append(f"{turn.t('bot.orgs.area')}: " + esc(", ".join(d.name for d in org.districts)))
    shown = published_contacts(org)
    contacts = [c for c in ((org.contact_email, org.phone, org.website) if people
                            else (shown.email, shown.phone, shown.website)) if c]
    if contacts:
        lines.append(esc(" · ".join(contacts)))
    if people:
        members = await organisation_members(turn.session, org.id)
        names = [f"{m.display_name} (@{m.username})" if m.username else m.display_name
                 for m in members if m.display_name]
        if names:
            lines.append(f"{turn.t('bot.orgs.people')}: " + esc(", ".join(names)))
    return "\n".join(lines)


async def _show(turn: Turn, query: str, page: int, *, edit: bool) -> None:
    found = await find_organisations(turn, query)
    if not found:
        turn.say("bot.orgs.none", query=query)
        return
    pages = (len(found) + PAGE - 1) // PAGE
    page = min(max(page, 0), pages - 1)
    chunk = found[page * PAGE:(page + 1) * PAGE]
    blocks: list[str] = [turn.t("bot.orgs.title", count=len(found), query=f"· {query}" if query else "")]
    people = turn.who.is_member and turn.is_private
    blocks += [await describe(turn, org, people=people) for org in chunk]
    if pages > 1:
        blocks.append(turn.t("bot.orgs.page", page=page + 1, pages=pages))
    text = Html("\n\n".join(blocks))
    nav = []
    if page > 0:
        nav.append((turn.t("bot.prev"), _page_cb(page - 1, query)))
    if page < pages - 1:
        nav.append((turn.t("bot.next"), _page_cb(page + 1, query)))
    buttons = [nav] if nav else None
    if edit:
        turn.edit(text, buttons)
    else:
        turn.reply(text, buttons)


def _page_cb(page: int, query: str) -> str:
    """`org:<page>:<query>`, the query cut to keep the data within 64 bytes."""
    head = f"org:{page}:"
    budget = 64 - len(head.encode())
    cut = query.replace(":", " ")
    while len(cut.encode()) > budget:
        cut = cut[:-1]
    return head + cut


@handler(writes=False)
async def cmd_orgs(turn: Turn) -> None:
    query = " ".join(turn.args)[:200]
    await _show(turn, query, 0, edit=False)


@handler(writes=False)
async def on_page(turn: Turn) -> None:
    page = int_part(turn.data, 1)
    if page is None:
        turn.toast(turn.t("bot.button_expired"))
        return
    await _show(turn, ":".join(turn.data[2:]), page, edit=True)


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [CommandHandler("orgs", cmd_orgs), CallbackQueryHandler(on_page, pattern=r"^org:")]


__all__ = ["COMMANDS", "handlers", "service_label", "tr", "type_label"]
