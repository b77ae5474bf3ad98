"""/org_edit: what an organisation offers and where: its services (buttons to tick) and
the districts it serves (powiaty or a subregion, typed), which `/orgs`, the site's
directory and the white spots read.

A member edits their own organisation; an admin names any (`/org_edit COP Olsztyn`).
Who may change what is checked again in `network.org_profile.update_profile`, so a
forged button changes nothing. Callback data (prefix `oe`): `oe:o:<org id>` (an admin's
pick), `oe:s:<service>` (tick or untick), `oe:ok`, `oe:keep`, `oe:all`.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot.common import (
    END,
    Command,
    Turn,
    cb,
    check_length,
    conversation,
    form,
    handler,
    int_part,
    rows_of,
)
from infranet.bot.handlers.directory import find_organisations, service_label
from infranet.context import AppContext
from infranet.network.org_profile import (
    DISTRICTS_TEXT_MAX,
    Profile,
    get_profile,
    split_districts,
    update_profile,
)
from infranet.network.orgs import SERVICES

COMMANDS = [Command("org_edit", "member")]
NAME = "org_edit"
PICK, SERVICES_STEP, DISTRICTS = "oe.pick", "oe.services", "oe.districts"


def _services_screen(turn: Turn, data: dict[str, Any]) -> tuple[str, Any]:
    chosen = set(data.get("services") or [])
    buttons = rows_of([(("✓ " if code in chosen else "") + service_label(code, turn.lang),
                        cb("oe", "s", code)) for code in SERVICES])
    buttons.append([(turn.t("bot.org_edit.next"), cb("oe", "ok"))])
    return turn.t("bot.org_edit.services", org=data.get("org")), buttons


async def _start(turn: Turn, org_id: int, *, edit: bool) -> object:
    profile = await get_profile(turn.session, turn.actor, org_id)  # refuses others' organisations
    data = form(turn, NAME)
    data.update(org_id=profile.organisation_id, org=profile.name, services=profile.services,
                districts=profile.districts)
    text, buttons = _services_screen(turn, data)
    if edit:
        turn.edit(text, buttons)
    else:
        turn.reply(text, buttons)
    return SERVICES_STEP


@handler(access="member", chat="private")
async def cmd_org_edit(turn: Turn) -> object:
    turn.user_data[NAME] = {}
    query = " ".join(turn.args)[:200].strip()
    own = turn.who.member.organisation_id if turn.who.member else None
    if query and turn.actor.is_admin:
        found = await find_organisations(turn, query, limit=8)
        if not found:
            turn.say("bot.orgs.none", query=query)
            return END
        turn.say("bot.org_edit.pick", [[(o.name[:60], cb("oe", "o", o.id))] for o in found])
        return PICK
    if own is None:
        turn.say("bot.org_edit.no_org")
        return END
    return await _start(turn, own, edit=False)


@handler(access="member", chat="private")
async def on_pick(turn: Turn) -> object:
    org_id = int_part(turn.data, 2)
    if org_id is None or not 0 < org_id < 2**31:
        turn.toast(turn.t("bot.button_expired"))
        return None
    return await _start(turn, org_id, edit=True)


@handler(access="member", chat="private")
async def on_service(turn: Turn) -> object:
    data = form(turn, NAME)
    action = turn.data[1] if len(turn.data) > 1 else ""
    if "org_id" not in data:
        turn.toast(turn.t("bot.button_expired"))
        return END
    if action == "ok":
        current = ", ".join(data.get("districts") or []) or turn.t("bot.org_edit.whole_region")
        turn.edit(turn.t("bot.org_edit.ask_districts", current=current),
                  [[(turn.t("bot.org_edit.keep"), cb("oe", "keep")),
                    (turn.t("bot.org_edit.whole_region"), cb("oe", "all"))]])
        return DISTRICTS
    code = turn.data[2] if len(turn.data) > 2 else ""
    if code not in SERVICES:
        turn.toast(turn.t("bot.button_expired"))
        return None
    chosen = list(data.get("services") or [])
    data["services"] = [c for c in chosen if c != code] if code in chosen else [*chosen, code]
    turn.edit(*_services_screen(turn, data))
    return None


def _saved(turn: Turn, profile: Profile) -> str:
    return turn.t("bot.org_edit.saved", org=profile.name,
                  services=", ".join(service_label(s, turn.lang) for s in profile.services) or "—",
                  districts=", ".join(profile.districts) or turn.t("bot.org_edit.whole_region"))


async def _save(turn: Turn, districts: list[str] | None) -> object:
    data = form(turn, NAME)
    if "org_id" not in data:
        turn.toast(turn.t("bot.button_expired"))
        return END
    profile = await update_profile(turn.session, turn.ctx, turn.actor, data["org_id"],
                                   services=list(data.get("services") or []), districts=districts)
    turn.user_data.pop(NAME, None)
    turn.edit(_saved(turn, profile))
    return END


@handler(access="member", chat="private")
async def on_districts_text(turn: Turn) -> object:
    return await _save(turn, split_districts(check_length(turn.text, DISTRICTS_TEXT_MAX)))


@handler(access="member", chat="private")
async def on_districts_button(turn: Turn) -> object:
    action = turn.data[1] if len(turn.data) > 1 else ""
    return await _save(turn, [] if action == "all" else None)


@handler(access="member", chat="private", writes=False)
async def on_stale(turn: Turn) -> None:
    turn.toast(turn.t("bot.button_expired"))


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    text = filters.TEXT & ~filters.COMMAND
    form_ = conversation(ctx, NAME, [CommandHandler("org_edit", cmd_org_edit)], {
        PICK: [CallbackQueryHandler(on_pick, pattern=r"^oe:o:")],
        SERVICES_STEP: [CallbackQueryHandler(on_service, pattern=r"^oe:(s:|ok$)")],
        DISTRICTS: [MessageHandler(text, on_districts_text),
                    CallbackQueryHandler(on_districts_button, pattern=r"^oe:(keep|all)$")],
    })
    return [form_, CallbackQueryHandler(on_stale, pattern=r"^oe:")]


__all__ = ["COMMANDS", "handlers"]
