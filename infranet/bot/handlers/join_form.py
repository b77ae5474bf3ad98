"""The /join form: an existing organisation found by name, or a proposed one (name,
type, districts, contact e-mail); the confirmed request goes to every admin.

The request's text and its Approve / Reject buttons, and what happens when an admin
presses one, are in `join_decisions`; the conversation is registered in `membership.py`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from infranet.bot.common import END, Html, Turn, cb, check_length, form, handler, int_part, rows_of, tr
from infranet.bot.decisions import edit_copies, send_copies
from infranet.bot.handlers.join_decisions import (
    decision_buttons,
    district_names,
    org_type_label,
    request_text,
)
from infranet.network.membership import JoinRequest, ask_to_join, withdrawn_requests
from infranet.network.orgs import NAME_MAX, ORG_TYPES, OrgInput, search_organisations
from infranet.storage.models import MembershipRequest, MemberStatus, Organisation
from infranet.validation import clean_email, clean_text, plain_text

NAME = "join"
ORG, NEW_NAME, NEW_TYPE, NEW_DISTRICTS, NEW_EMAIL, CONFIRM = (
    "join.org", "join.name", "join.type", "join.districts", "join.email", "join.confirm")
SEARCH_RESULTS = 8


@handler(chat="private", db=False)
async def cmd_join(turn: Turn) -> object:
    member = turn.who.member
    if member is not None and member.status == MemberStatus.APPROVED:
        org = member.organisation.name if member.organisation else "—"
        turn.reply(tr(turn.lang, "membership.already_member", org=org))
        return END
    if member is not None and member.status == MemberStatus.BLOCKED:
        turn.reply(tr(turn.lang, "membership.blocked"))
        return END
    turn.user_data[NAME] = {}
    turn.say("bot.join.ask_org")
    return ORG


@handler(chat="private", writes=False)
async def on_org_query(turn: Turn) -> object:
    query = check_length(turn.text, NAME_MAX)
    form(turn, NAME)["query"] = query
    found = await search_organisations(turn.session, turn.ctx, query, limit=SEARCH_RESULTS)
    new = [(turn.t("bot.join.new_button"), cb("join", "new"))]
    if not found:
        turn.say("bot.join.none", [new], query=query)
    else:
        rows = [[(org.name[:60], cb("join", "org", org.id))] for org in found]
        turn.say("bot.join.pick", [*rows, new])
    return ORG


@handler(chat="private")
async def on_org_picked(turn: Turn) -> object:
    org_id = int_part(turn.data, 2)
    if org_id is None:
        turn.toast(turn.t("bot.button_expired"))
        return None
    request = await ask_to_join(turn.session, turn.ctx, _request(turn, organisation_id=org_id))
    await _announce(turn, request, None)
    return END


@handler(chat="private", db=False)
async def on_new_org(turn: Turn) -> object:
    turn.edit(turn.t("bot.join.ask_name"))
    return NEW_NAME


@handler(chat="private", writes=False)
async def on_new_name(turn: Turn) -> object:
    # Cleaned as `add_organisation` stores it, so that the check for a taken name is exact.
    name = clean_text(check_length(turn.text, NAME_MAX), "name", NAME_MAX, required=True) or ""
    existing = await turn.session.scalar(select(Organisation).where(
        func.lower(Organisation.name) == name.lower()))
    if existing is not None:
        turn.say("bot.join.name_taken", name=existing.name)
        return None
    form(turn, NAME)["name"] = name
    from infranet.bot.handlers.directory import type_label

    buttons = rows_of(((type_label(t_, turn.lang, short=True), cb("join", "type", t_))
                       for t_ in ORG_TYPES), 3)
    turn.say("bot.join.ask_type", buttons)
    return NEW_TYPE


@handler(chat="private", db=False)
async def on_new_type(turn: Turn) -> object:
    kind = turn.data[2] if len(turn.data) > 2 else ""
    if kind not in ORG_TYPES:
        turn.toast(turn.t("bot.button_expired"))
        return None
    form(turn, NAME)["type"] = kind
    turn.edit(turn.t("bot.join.ask_districts"),
              [[(turn.t("bot.join.region_button"), cb("join", "region"))]])
    return NEW_DISTRICTS


@handler(chat="private", db=False)
async def on_new_districts(turn: Turn) -> object:
    if turn.update.callback_query:
        slugs = [turn.ctx.region.root.slug]
    else:
        parts = [p.strip() for p in re.split(r"[,;\n]+", check_length(turn.text, 1000)) if p.strip()]
        if not parts:
            turn.say("bot.join.ask_districts")
            return None
        slugs = list(dict.fromkeys(turn.ctx.region.match(p).slug for p in parts))
    form(turn, NAME)["districts"] = slugs
    turn.say("bot.join.ask_email")
    return NEW_EMAIL


@handler(chat="private", db=False)
async def on_new_email(turn: Turn) -> object:
    from infranet.errors import ValidationFailed

    raw = check_length(turn.text, 254)
    try:
        email = clean_email(raw, "contact_email")
    except ValidationFailed:
        turn.say("bot.join.bad_email", value=raw)
        return None
    data = form(turn, NAME)
    data["email"] = email
    turn.say("bot.join.summary", [[(turn.t("bot.confirm"), cb("join", "ok")),
                                   (turn.t("bot.cancel"), cb("join", "cancel"))]],
             name=data.get("name"), type=org_type_label(data.get("type") or "other", turn.lang),
             districts=district_names(turn, data), email=email)
    return CONFIRM


@handler(chat="private")
async def on_confirm(turn: Turn) -> object:
    if turn.data[1:2] == ["cancel"]:
        turn.user_data.pop(NAME, None)
        turn.edit(turn.t("bot.cancelled"))
        return END
    data = form(turn, NAME)
    if not all(k in data for k in ("name", "type", "districts", "email")):
        turn.toast(turn.t("bot.button_expired"))
        return END
    new_org = OrgInput(name=data["name"], type=data["type"], districts=data["districts"],
                       contact_email=data["email"])
    request = await ask_to_join(turn.session, turn.ctx, _request(turn, new_organisation=new_org))
    await _announce(turn, request, data)
    return END


def _request(turn: Turn, **kwargs: Any) -> JoinRequest:
    user = turn.update.effective_user
    assert user is not None
    # A Telegram name is free text like any other (bidi overrides are a known spoofing trick).
    return JoinRequest(telegram_id=user.id, display_name=plain_text(user.full_name),
                       username=user.username,
                       language=turn.user_data.get("lang") or turn.lang, **kwargs)


async def _announce(turn: Turn, request: MembershipRequest, new_org: dict[str, Any] | None) -> None:
    """Tell the user the request went out, send it to every admin (each copy remembered),
    and void the copies of the person's earlier request still waiting, if any."""
    turn.user_data.pop(NAME, None)
    org = request.organisation.name if request.organisation else "—"
    turn.edit(turn.t("bot.join.sent", org=org))
    from infranet.network.members import admins

    messages = []
    for admin in await admins(turn.session):
        lang = admin.language or "pl"
        messages.append((admin.telegram_id, lang, request_text(turn, request, lang, new_org),
                         decision_buttons(request.id, lang)))
    if not messages:
        turn.say("bot.join.no_admins")
    voided = await withdrawn_requests(turn.session, request.member_id, request.id)
    bot, db, request_id = turn.context.bot, turn.ctx.db, request.id
    member, org_name = request.member, org
    old = [(i, _withdrawn_text(member.id, member.display_name, org_name)) for i in voided]

    async def send() -> None:
        for old_id, text_for in old:
            await edit_copies(bot, db, "jr", old_id, text_for)
        await send_copies(bot, db, "jr", request_id, messages)

    turn.after_commit(send)


def _withdrawn_text(member_id: int, name: str, org: str) -> Any:
    def text(lang: str) -> Html:
        return tr(lang, "bot.join.withdrawn_admin", id=member_id, name=name, org=org)
    return text
