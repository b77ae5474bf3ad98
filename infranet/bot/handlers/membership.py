"""/join (existing organisation or a proposed one), the admins' Approve / Reject
buttons, and the admin commands /members, /approve, /block, /unblock, /promote, /demote.

Every Approve / Reject button names one join request (`jr:<request id>:ok`), not the
member: a person's member row serves all their requests, and a button of an earlier,
decided request must not decide a later one. Once an admin decides, every admin's copy
is edited to say what was decided and by whom (`bot/decisions.py`); a copy pressed
after that answers "already decided by NAME" and changes nothing. Blocking asks for a
confirmation first and names who may block whom (`storage/membership.py`).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from telegram import Message
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from infranet.bot.common import (
    END,
    Buttons,
    Command,
    Html,
    Turn,
    cb,
    check_length,
    esc,
    form,
    handler,
    int_part,
    rows_of,
    tr,
)
from infranet.bot.decisions import edit_copies, send_copies
from infranet.context import AppContext
from infranet.network.membership import (
    Decision,
    JoinRequest,
    ask_to_join,
    block_member,
    check_may_block,
    decide_member,
    decide_request,
    demote_member,
    find_member,
    get_member_by_id,
    list_members,
    pending_requests,
    promote_member,
    unblock_member,
    withdrawn_requests,
)
from infranet.network.orgs import NAME_MAX, ORG_TYPES, OrgInput, search_organisations
from infranet.storage.models import (
    Member,
    MembershipRequest,
    MemberStatus,
    Organisation,
    RequestStatus,
    Role,
)
from infranet.validation import clean_email, clean_text, plain_text

COMMANDS = [Command("join"), Command("members", "admin"), Command("approve", "admin"),
            Command("block", "admin"), Command("unblock", "admin"), Command("promote", "admin"),
            Command("demote", "admin")]

NAME = "join"
ORG, NEW_NAME, NEW_TYPE, NEW_DISTRICTS, NEW_EMAIL, CONFIRM = (
    "join.org", "join.name", "join.type", "join.districts", "join.email", "join.confirm")
SEARCH_RESULTS = 8



# --- /join ----------------------------------------------------------------------------------


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
             name=data.get("name"), type=_type_label(data.get("type") or "other", turn.lang),
             districts=_district_names(turn, data), email=email)
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


def _district_names(turn: Turn, data: dict[str, Any]) -> str:
    by_slug = {d.slug: d.name for d in turn.ctx.region.districts}
    return ", ".join(by_slug.get(s, s) for s in data.get("districts", []))


def _decision_buttons(request_id: int, lang: str, *, row: bool = False) -> Buttons:
    """Approve / Reject of one request; `row`: a row of a list (/members), where a press
    changes only its own row."""
    tail = ("l",) if row else ()
    return [[(tr(lang, "bot.join.approve"), cb("jr", request_id, "ok", *tail)),
             (tr(lang, "bot.join.reject"), cb("jr", request_id, "no", *tail))]]


def _type_label(code: str, lang: str) -> str:
    from infranet.bot.handlers.directory import type_label

    return type_label(code, lang)


def _request_text(turn: Turn, request: MembershipRequest, lang: str,
                  new_org: dict[str, Any] | None = None) -> Html:
    member = request.member
    org = request.organisation.name if request.organisation else "—"
    new = tr(lang, "bot.join.admin_new_org", type=_type_label(new_org["type"], lang),
             districts=_district_names(turn, new_org), email=new_org["email"]) if new_org else ""
    return tr(lang, "bot.join.admin_request", id=member.id, name=member.display_name,
              username=f"@{member.username}" if member.username else "", org=org, new=Html(new))


def _outcome_text(request: MembershipRequest) -> Any:
    """The decided request as every admin's copy shows it, in the copy's language."""
    member = request.member
    name, member_id = member.display_name, member.id
    org = request.organisation.name if request.organisation else "—"
    status, by = request.status, request.decided_by_name or "—"

    def text(lang: str) -> Html:
        if status == RequestStatus.WITHDRAWN:
            return tr(lang, "bot.join.withdrawn_admin", id=member_id, name=name, org=org)
        key = "bot.join.approved_admin" if status == RequestStatus.APPROVED else "bot.join.rejected_admin"
        return tr(lang, key, id=member_id, name=name, org=org, by=by)
    return text


def _edit_copies_after_commit(turn: Turn, request: MembershipRequest) -> None:
    bot, db, text_for, request_id = turn.context.bot, turn.ctx.db, _outcome_text(request), request.id
    pressed = _pressed(turn)

    async def edit() -> None:
        await edit_copies(bot, db, "jr", request_id, text_for, skip=pressed)

    turn.after_commit(edit)


def _pressed(turn: Turn) -> tuple[int, int] | None:
    query = turn.update.callback_query
    message = query.message if query else None
    return (message.chat.id, message.message_id) if message is not None else None


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
        messages.append((admin.telegram_id, lang, _request_text(turn, request, lang, new_org),
                         _decision_buttons(request.id, lang)))
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


def _join_conversation(ctx: AppContext) -> BaseHandler[Any, Any, Any]:
    from infranet.bot.common import conversation

    text = filters.TEXT & ~filters.COMMAND
    return conversation(ctx, NAME, [CommandHandler("join", cmd_join)], {
        ORG: [MessageHandler(text, on_org_query),
              CallbackQueryHandler(on_org_picked, pattern=r"^join:org:"),
              CallbackQueryHandler(on_new_org, pattern=r"^join:new$")],
        NEW_NAME: [MessageHandler(text, on_new_name)],
        NEW_TYPE: [CallbackQueryHandler(on_new_type, pattern=r"^join:type:")],
        NEW_DISTRICTS: [MessageHandler(text, on_new_districts),
                        CallbackQueryHandler(on_new_districts, pattern=r"^join:region$")],
        NEW_EMAIL: [MessageHandler(text, on_new_email)],
        CONFIRM: [CallbackQueryHandler(on_confirm, pattern=r"^join:(ok|cancel)$")],
    })


# --- admins' decisions ------------------------------------------------------------------------


@handler(access="admin")
async def on_decision(turn: Turn) -> None:
    """`jr:<request id>:ok|no[:l]`: decide exactly that request, or say who already did."""
    request_id = int_part(turn.data, 1)
    verdict = turn.data[2] if len(turn.data) > 2 else ""
    in_list = turn.data[3:] == ["l"]
    if request_id is None or verdict not in ("ok", "no") or len(turn.data) > 4:
        turn.toast(turn.t("bot.button_expired"))
        return
    decision = await decide_request(turn.session, turn.ctx, turn.actor, request_id, verdict == "ok")
    text = _outcome_text(decision.request)(turn.lang)
    if in_list:
        _edit_list_row(turn, request_id, text)
    else:
        turn.edit(text)
    if decision.changed:
        _tell_member(turn, decision)
        _edit_copies_after_commit(turn, decision.request)
    elif decision.request.status == RequestStatus.WITHDRAWN:
        turn.toast(turn.t("bot.join.already_withdrawn"))
    else:
        turn.toast(turn.t("bot.join.already", by=decision.request.decided_by_name or "—",
                          outcome=turn.t(f"bot.join.outcome.{decision.request.status}")))


def _edit_list_row(turn: Turn, request_id: int, line: str) -> None:
    """In a list of requests, the pressed row's buttons give way to its outcome, added
    under the list's text; the other rows keep theirs."""
    query = turn.update.callback_query
    message = query.message if query else None
    if not isinstance(message, Message):  # absent, or too old for Telegram to show
        turn.edit(line)
        return
    prefix = f"jr:{request_id}:"
    rows = [[(b.text, b.callback_data) for b in row if isinstance(b.callback_data, str)]
            for row in (message.reply_markup.inline_keyboard if message.reply_markup else ())]
    kept = [row for row in rows if row and not any(data.startswith(prefix) for _, data in row)]
    head = message.text_html if getattr(message, "text", None) else ""
    turn.edit(Html(f"{head}\n{line}" if head else line), kept or None)


def _tell_member(turn: Turn, decision: Decision) -> None:
    member, request = decision.member, decision.request
    org = request.organisation.name if request.organisation else "—"
    approved = request.status == RequestStatus.APPROVED
    turn.notify_member(member, "bot.join.approved_user" if approved else "bot.join.rejected_user",
                       org=org)
    _admin_menu(turn, member)  # a member's menu: their commands appear (or stay hidden)


def _status(turn: Turn, member: Member) -> str:
    if member.role == Role.ADMIN and member.status == MemberStatus.APPROVED:
        return turn.t("bot.status.admin")
    return turn.t(f"bot.status.{member.status}")


@handler(access="admin", chat="private")
async def cmd_members(turn: Turn) -> None:
    status = turn.args[0].lower() if turn.args else None
    if status not in (None, *[s.value for s in MemberStatus]):
        status = None
    members = await list_members(turn.session, turn.actor, status=status)
    lines = [turn.t("bot.members.title", count=len(members)), ""]
    for member in members:
        lines.append(turn.t("bot.members.line", id=member.id, name=member.display_name or "—",
                            username=f"@{member.username}" if member.username else "",
                            org=member.organisation.name if member.organisation else "—",
                            status=_status(turn, member)))
    turn.reply(Html("\n".join(lines)))
    pending = await pending_requests(turn.session, turn.actor)
    if pending:
        buttons = [[(f"✅ #{r.member_id}", cb("jr", r.id, "ok", "l")),
                    (f"❌ #{r.member_id}", cb("jr", r.id, "no", "l"))] for r in pending[:20]]
        turn.say("bot.members.pending_hint", buttons)


async def _target(turn: Turn, command: str) -> Member | None:
    if not turn.args:
        turn.say("bot.members.usage", command=command)
        return None
    return await find_member(turn.session, turn.args[0])


@handler(access="admin", chat="private")
async def cmd_approve(turn: Turn) -> None:
    """`/approve #member` approves the member's waiting request; without a member, every
    waiting request is shown with its buttons."""
    if not turn.args:
        pending = await pending_requests(turn.session, turn.actor)
        if not pending:
            turn.say("bot.members.none_pending")
            return
        copies = [(r.id, (turn.chat_id, turn.lang, _request_text(turn, r, turn.lang),
                          _decision_buttons(r.id, turn.lang))) for r in pending[:20]]
        bot, db = turn.context.bot, turn.ctx.db

        async def send() -> None:  # each a copy of its request, edited when it is decided
            for request_id, message in copies:
                await send_copies(bot, db, "jr", request_id, [message])

        turn.after_commit(send)
        return
    member = await find_member(turn.session, turn.args[0])
    decision = await decide_member(turn.session, turn.ctx, turn.actor, member.id, True)
    turn.reply(_outcome_text(decision.request)(turn.lang))
    if decision.changed:
        _tell_member(turn, decision)
        _edit_copies_after_commit(turn, decision.request)


def _org_name(member: Member) -> str:
    return member.organisation.name if member.organisation else "—"


@handler(access="admin", chat="private")
async def cmd_block(turn: Turn) -> None:
    """Ask first: blocking shuts a person out, and a number typed wrong blocks someone else."""
    member = await _target(turn, "block")
    if member is None:
        return
    if member.status == MemberStatus.BLOCKED:
        turn.say("bot.members.already_blocked", id=member.id, name=member.display_name)
        return
    check_may_block(turn.ctx, turn.actor, member)  # refused now, not after the confirmation
    turn.say("bot.members.block_confirm",
             [[(turn.t("bot.members.block_button"), cb("blk", member.id, "ok")),
               (turn.t("bot.cancel"), cb("blk", member.id, "no"))]],
             id=member.id, name=member.display_name, org=_org_name(member))


@handler(access="admin", chat="private")
async def on_block(turn: Turn) -> None:
    """`blk:<member id>:ok|no`, the confirmation of /block."""
    member_id = int_part(turn.data, 1)
    verdict = turn.data[2] if len(turn.data) > 2 else ""
    if member_id is None or verdict not in ("ok", "no") or len(turn.data) > 3:
        turn.toast(turn.t("bot.button_expired"))
        return
    member = await get_member_by_id(turn.session, member_id)
    if verdict == "no":
        turn.edit(turn.t("bot.members.block_cancelled", id=member.id, name=member.display_name))
        return
    if member.status == MemberStatus.BLOCKED:
        turn.edit(turn.t("bot.members.already_blocked", id=member.id, name=member.display_name))
        return
    member = await block_member(turn.session, turn.ctx, turn.actor, member.id)
    turn.edit(turn.t("bot.members.blocked_admin", id=member.id, name=member.display_name))
    turn.notify_member(member, "bot.members.blocked_user")
    _admin_menu(turn, member, admin=False)


@handler(access="admin", chat="private")
async def cmd_unblock(turn: Turn) -> None:
    member = await _target(turn, "unblock")
    if member is None:
        return
    member = await unblock_member(turn.session, turn.ctx, turn.actor, member.id)
    turn.say("bot.members.unblocked_admin", id=member.id, name=member.display_name)
    turn.notify_member(member, "bot.members.unblocked_user" if member.is_approved
                       else "bot.members.unblocked_user_join")
    _admin_menu(turn, member)


@handler(access="admin", chat="private")
async def cmd_promote(turn: Turn) -> None:
    member = await _target(turn, "promote")
    if member is None:
        return
    member = await promote_member(turn.session, turn.ctx, turn.actor, member.id)
    turn.say("bot.members.promoted_admin", id=member.id, name=member.display_name)
    turn.notify_member(member, "bot.members.promoted_user")
    _admin_menu(turn, member, admin=True)


@handler(access="admin", chat="private")
async def cmd_demote(turn: Turn) -> None:
    member = await _target(turn, "demote")
    if member is None:
        return
    member = await demote_member(turn.session, turn.ctx, turn.actor, member.id)
    turn.say("bot.members.demoted_admin", id=member.id, name=member.display_name)
    turn.notify_member(member, "bot.members.demoted_user")
    _admin_menu(turn, member, admin=False)


def _admin_menu(turn: Turn, member: Member, *, admin: bool | None = None) -> None:
    """The member's command menu as their role now is (`bot/menus.py`), once committed."""
    from infranet.bot import menus

    menus.refresh_after_commit(turn, member)


@handler(access="admin")
async def on_old_button(turn: Turn) -> None:
    turn.toast(turn.t("bot.button_expired"))
    turn.edit(turn.t("bot.join.old_button"))


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [
        _join_conversation(ctx),
        CallbackQueryHandler(on_decision, pattern=r"^jr:"),
        # Buttons sent before join requests had rows of their own named the member.
        CallbackQueryHandler(on_old_button, pattern=r"^mem:"),
        CallbackQueryHandler(on_block, pattern=r"^blk:"),
        CommandHandler("members", cmd_members),
        CommandHandler("approve", cmd_approve),
        CommandHandler("block", cmd_block),
        CommandHandler("unblock", cmd_unblock),
        CommandHandler("promote", cmd_promote),
        CommandHandler("demote", cmd_demote),
    ]


__all__ = ["COMMANDS", "esc", "handlers"]
