"""/join (existing organisation or a proposed one), the admins' Approve / Reject
buttons, and the admin commands /members, /approve, /block, /promote."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
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
from infranet.context import AppContext
from infranet.i18n import register
from infranet.storage.membership import (
    JoinRequest,
    block_member,
    decide_member,
    find_member,
    list_members,
    promote_member,
    request_join,
)
from infranet.storage.models import Member, MemberStatus, Organisation, Role
from infranet.storage.orgs import NAME_MAX, ORG_TYPES, OrgInput, normalise_email, search_organisations
from infranet.validation import clean_text, plain_text

COMMANDS = [Command("join"), Command("members", "admin"), Command("approve", "admin"),
            Command("block", "admin"), Command("promote", "admin")]

NAME = "join"
ORG, NEW_NAME, NEW_TYPE, NEW_DISTRICTS, NEW_EMAIL, CONFIRM = (
    "join.org", "join.name", "join.type", "join.districts", "join.email", "join.confirm")
SEARCH_RESULTS = 8

register({
    "bot.cmd.join": {"pl": "dołącz do sieci", "en": "join the network"},
    "bot.cmd.members": {"pl": "członkowie i prośby o dołączenie", "en": "members and join requests"},
    "bot.cmd.approve": {"pl": "zatwierdź prośbę: /approve #nr", "en": "approve a request: /approve #no"},
    "bot.cmd.block": {"pl": "zablokuj członka: /block #nr", "en": "block a member: /block #no"},
    "bot.cmd.promote": {"pl": "nadaj prawa administratora: /promote #nr",
                        "en": "make an admin: /promote #no"},
    "bot.join.ask_org": {
        "pl": "Jaką organizację reprezentujesz? Napisz jej nazwę lub fragment nazwy.",
        "en": "Which organisation do you represent? Write its name or part of it."},
    "bot.join.pick": {"pl": "Wybierz swoją organizację albo zgłoś nową:",
                      "en": "Pick your organisation or propose a new one:"},
    "bot.join.none": {
        "pl": "Nie znalazłem organizacji „{query}” w sieci. Napisz inną nazwę albo zgłoś nową.",
        "en": "I found no organisation \"{query}\" in the network. Try another name or propose "
              "a new one."},
    "bot.join.new_button": {"pl": "➕ Zgłoś nową organizację", "en": "➕ Propose a new organisation"},
    "bot.join.ask_name": {"pl": "Podaj pełną nazwę organizacji.",
                          "en": "Give the organisation's full name."},
    "bot.join.name_taken": {
        "pl": "Organizacja „{name}” już jest w sieci. Aby do niej dołączyć, zacznij od nowa: "
              "/join i wybierz ją z listy. Albo podaj inną nazwę.",
        "en": "\"{name}\" is already in the network. To join it, start again with /join and pick "
              "it from the list. Or give another name."},
    "bot.join.ask_type": {"pl": "Jakiego typu jest to organizacja?",
                          "en": "What kind of organisation is it?"},
    "bot.join.ask_districts": {
        "pl": "Na jakim obszarze działa? Wypisz powiaty po przecinku (np. olsztyński, Elbląg) "
              "albo wybierz całe województwo.",
        "en": "Where does it work? List the districts separated by commas (e.g. olsztyński, "
              "Elbląg) or choose the whole region."},
    "bot.join.region_button": {"pl": "Całe województwo", "en": "The whole region"},
    "bot.join.ask_email": {"pl": "Podaj kontaktowy adres e-mail organizacji.",
                           "en": "Give the organisation's contact e-mail address."},
    "bot.join.bad_email": {"pl": "„{value}” nie wygląda na adres e-mail. Spróbuj jeszcze raz.",
                           "en": "\"{value}\" does not look like an e-mail address. Try again."},
    "bot.join.summary": {
        "pl": "<b>Nowa organizacja</b>\nNazwa: {name}\nTyp: {type}\nObszar: {districts}\n"
              "E-mail: {email}\n\nWysłać zgłoszenie do administratorów?",
        "en": "<b>New organisation</b>\nName: {name}\nType: {type}\nArea: {districts}\n"
              "E-mail: {email}\n\nSend the request to the admins?"},
    "bot.join.sent": {
        "pl": "Prośba o dołączenie ({org}) została wysłana administratorom. Dam znać o decyzji.",
        "en": "Your request to join ({org}) went to the admins. I will tell you their decision."},
    "bot.join.no_admins": {
        "pl": "Uwaga: sieć nie ma jeszcze administratora, więc prośba poczeka.",
        "en": "Note: the network has no admin yet, so the request will wait."},
    "bot.join.admin_request": {
        "pl": "<b>Prośba o dołączenie</b> #{id}\n{name} {username}\nOrganizacja: {org}{new}",
        "en": "<b>Request to join</b> #{id}\n{name} {username}\nOrganisation: {org}{new}"},
    "bot.join.admin_new_org": {
        "pl": "\n<i>Nowa organizacja</i>: {type}; {districts}; {email}",
        "en": "\n<i>New organisation</i>: {type}; {districts}; {email}"},
    "bot.join.approve": {"pl": "✅ Zatwierdź", "en": "✅ Approve"},
    "bot.join.reject": {"pl": "❌ Odrzuć", "en": "❌ Reject"},
    "bot.join.approved_admin": {"pl": "✅ Zatwierdzono #{id}: {name} ({org}).",
                                "en": "✅ Approved #{id}: {name} ({org})."},
    "bot.join.rejected_admin": {"pl": "❌ Odrzucono #{id}: {name} ({org}).",
                                "en": "❌ Rejected #{id}: {name} ({org})."},
    "bot.join.approved_user": {
        "pl": "Witamy w sieci! Twoja prośba ({org}) została zatwierdzona. Zobacz, co możesz "
              "teraz zrobić: /help",
        "en": "Welcome to the network! Your request ({org}) was approved. See what you can do "
              "now: /help"},
    "bot.join.rejected_user": {
        "pl": "Niestety Twoja prośba o dołączenie ({org}) została odrzucona. W razie pytań "
              "skontaktuj się z sekretariatem sieci.",
        "en": "Sorry, your request to join ({org}) was rejected. Please contact the network's "
              "secretariat with any questions."},
    "bot.members.title": {"pl": "<b>Członkowie</b> ({count})", "en": "<b>Members</b> ({count})"},
    "bot.members.line": {"pl": "#{id} {name} {username} — {org} — {status}",
                         "en": "#{id} {name} {username} — {org} — {status}"},
    "bot.members.pending_hint": {
        "pl": "Prośby czekające na decyzję: przyciski poniżej albo /approve #nr.",
        "en": "Requests waiting for a decision: the buttons below, or /approve #no."},
    "bot.members.none_pending": {"pl": "Brak próśb czekających na decyzję.",
                                 "en": "No requests are waiting."},
    "bot.members.usage": {"pl": "Podaj członka: /{command} #nr lub @nazwa (numery: /members).",
                          "en": "Name the member: /{command} #no or @username (numbers: /members)."},
    "bot.members.blocked_admin": {"pl": "Zablokowano #{id} {name}.", "en": "Blocked #{id} {name}."},
    "bot.members.blocked_user": {
        "pl": "Twoje konto w bocie sieci zostało zablokowane przez administratora.",
        "en": "Your account with the network's bot was blocked by an admin."},
    "bot.members.promoted_admin": {"pl": "#{id} {name} jest teraz administratorem.",
                                   "en": "#{id} {name} is now an admin."},
    "bot.members.promoted_user": {
        "pl": "Masz teraz prawa administratora sieci. Nowe komendy: /help",
        "en": "You are now one of the network's admins. New commands: /help"},
    "bot.status.pending": {"pl": "czeka", "en": "pending"},
    "bot.status.approved": {"pl": "zatwierdzony", "en": "approved"},
    "bot.status.blocked": {"pl": "zablokowany", "en": "blocked"},
    "bot.status.rejected": {"pl": "odrzucony", "en": "rejected"},
    "bot.status.admin": {"pl": "administrator", "en": "admin"},
})


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
    member = await request_join(turn.session, turn.ctx, _request(turn, organisation_id=org_id))
    await _announce(turn, member, None)
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
    buttons = rows_of(((t_, cb("join", "type", t_)) for t_ in ORG_TYPES), 3)
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
        email = normalise_email(raw)
    except ValidationFailed:
        turn.say("bot.join.bad_email", value=raw)
        return None
    data = form(turn, NAME)
    data["email"] = email
    turn.say("bot.join.summary", [[(turn.t("bot.confirm"), cb("join", "ok")),
                                   (turn.t("bot.cancel"), cb("join", "cancel"))]],
             name=data.get("name"), type=data.get("type"), districts=_district_names(turn, data),
             email=email)
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
    member = await request_join(turn.session, turn.ctx, _request(turn, new_organisation=new_org))
    await _announce(turn, member, data)
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


def _decision_buttons(member_id: int) -> Any:
    def build(lang: str) -> Buttons:
        return [[(tr(lang, "bot.join.approve"), cb("mem", member_id, "ok")),
                 (tr(lang, "bot.join.reject"), cb("mem", member_id, "no"))]]
    return build


async def _announce(turn: Turn, member: Member, new_org: dict[str, Any] | None) -> None:
    turn.user_data.pop(NAME, None)
    org = member.organisation.name if member.organisation else "—"
    turn.edit(turn.t("bot.join.sent", org=org))
    sent = 0
    from infranet.storage.members import admins

    for admin in await admins(turn.session):
        lang = admin.language or "pl"
        new = tr(lang, "bot.join.admin_new_org", type=new_org["type"],
                 districts=_district_names(turn, new_org), email=new_org["email"]) if new_org else ""
        turn.notify(admin.telegram_id,
                    tr(lang, "bot.join.admin_request", id=member.id, name=member.display_name,
                       username=f"@{member.username}" if member.username else "", org=org,
                       new=Html(new)),
                    _decision_buttons(member.id)(lang))
        sent += 1
    if not sent:
        turn.say("bot.join.no_admins")


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
    member_id = int_part(turn.data, 1)
    verdict = turn.data[2] if len(turn.data) > 2 else ""
    if member_id is None or verdict not in ("ok", "no"):
        turn.toast(turn.t("bot.button_expired"))
        return
    await _decide(turn, member_id, verdict == "ok", edit=True)


async def _decide(turn: Turn, member_id: int, approve: bool, *, edit: bool) -> None:
    member = await decide_member(turn.session, turn.ctx, turn.actor, member_id, approve)
    org = member.organisation.name if member.organisation else "—"
    text = turn.t("bot.join.approved_admin" if approve else "bot.join.rejected_admin",
                  id=member.id, name=member.display_name, org=org)
    if edit:
        turn.edit(text)
    else:
        turn.reply(text)
    turn.notify_member(member, "bot.join.approved_user" if approve else "bot.join.rejected_user",
                       org=org)


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
    pending = [m for m in members if m.status == MemberStatus.PENDING]
    turn.reply(Html("\n".join(lines)))
    if pending:
        buttons = [[(f"✅ #{m.id}", cb("mem", m.id, "ok")), (f"❌ #{m.id}", cb("mem", m.id, "no"))]
                   for m in pending[:20]]
        turn.say("bot.members.pending_hint", buttons)


async def _target(turn: Turn, command: str) -> Member | None:
    if not turn.args:
        turn.say("bot.members.usage", command=command)
        return None
    return await find_member(turn.session, turn.args[0])


@handler(access="admin", chat="private")
async def cmd_approve(turn: Turn) -> None:
    if not turn.args:
        pending = await list_members(turn.session, turn.actor, status=MemberStatus.PENDING)
        if not pending:
            turn.say("bot.members.none_pending")
            return
        await cmd_members_pending(turn, pending)
        return
    member = await find_member(turn.session, turn.args[0])
    await _decide(turn, member.id, True, edit=False)


async def cmd_members_pending(turn: Turn, pending: list[Member]) -> None:
    for member in pending[:20]:
        org = member.organisation.name if member.organisation else "—"
        turn.reply(turn.t("bot.join.admin_request", id=member.id, name=member.display_name,
                          username=f"@{member.username}" if member.username else "", org=org,
                          new=""),
                   _decision_buttons(member.id)(turn.lang))


@handler(access="admin", chat="private")
async def cmd_block(turn: Turn) -> None:
    member = await _target(turn, "block")
    if member is None:
        return
    member = await block_member(turn.session, turn.ctx, turn.actor, member.id)
    turn.say("bot.members.blocked_admin", id=member.id, name=member.display_name)
    turn.notify_member(member, "bot.members.blocked_user")
    _admin_menu(turn, member, admin=False)


@handler(access="admin", chat="private")
async def cmd_promote(turn: Turn) -> None:
    member = await _target(turn, "promote")
    if member is None:
        return
    member = await promote_member(turn.session, turn.ctx, turn.actor, member.id)
    turn.say("bot.members.promoted_admin", id=member.id, name=member.display_name)
    turn.notify_member(member, "bot.members.promoted_user")
    _admin_menu(turn, member, admin=True)


def _admin_menu(turn: Turn, member: Member, *, admin: bool) -> None:
    from infranet.bot.runtime import set_admin_menu

    bot, telegram_id, lang = turn.context.bot, member.telegram_id, member.language or "pl"

    async def update_menu() -> None:
        await set_admin_menu(bot, telegram_id, lang, admin=admin)

    turn.after_commit(update_menu)


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [
        _join_conversation(ctx),
        CallbackQueryHandler(on_decision, pattern=r"^mem:"),
        CommandHandler("members", cmd_members),
        CommandHandler("approve", cmd_approve),
        CommandHandler("block", cmd_block),
        CommandHandler("promote", cmd_promote),
    ]


__all__ = ["COMMANDS", "esc", "handlers"]
