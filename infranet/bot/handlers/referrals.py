"""/refer (a guided referral of a client to another organisation), the target's
Accept / Decline buttons, /referrals, and the duplicate-support warning."""

from __future__ import annotations

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
    tr,
)
from infranet.bot.handlers.directory import find_organisations
from infranet.context import AppContext
from infranet.i18n import format_date, register
from infranet.storage.membership import organisation_members
from infranet.storage.models import Member, Referral, ReferralStatus
from infranet.storage.referrals import (
    CONTACT_MAX,
    NAME_MAX,
    NEED_MAX,
    Duplicate,
    ReferralInput,
    close_referral,
    create_referral,
    decide_referral,
    duplicates,
    list_referrals,
    parse_identifier,
)
from infranet.validation import clean_text

COMMANDS = [Command("refer", "member"), Command("referrals", "member")]
NAME = "refer"
TARGET, KIND, CLIENT, IDS, NEED, CONTACT, CONSENT = (
    "ref.target", "ref.kind", "ref.client", "ref.ids", "ref.need", "ref.contact", "ref.consent")

register({
    "bot.cmd.refer": {"pl": "skieruj klienta do innej organizacji",
                      "en": "refer a client to another organisation"},
    "bot.cmd.referrals": {"pl": "wysłane i otrzymane skierowania", "en": "sent and received referrals"},
    "bot.refer.ask_target": {
        "pl": "Do jakiej organizacji kierujesz klienta? Napisz nazwę, usługę (np. szkolenia, "
              "księgowość) lub powiat.",
        "en": "Which organisation are you referring the client to? Write a name, a service "
              "(e.g. training, accounting) or a district."},
    "bot.refer.pick": {"pl": "Wybierz organizację:", "en": "Choose the organisation:"},
    "bot.refer.none": {"pl": "Nie znalazłem organizacji dla „{query}”. Spróbuj inaczej.",
                       "en": "I found no organisation for \"{query}\". Try other words."},
    "bot.refer.ask_kind": {"pl": "Kierujesz do: <b>{org}</b>. Kim jest klient?",
                           "en": "Referring to: <b>{org}</b>. Who is the client?"},
    "bot.refer.kind.ngo": {"pl": "Organizacja (NGO)", "en": "An NGO"},
    "bot.refer.kind.group": {"pl": "Grupa nieformalna", "en": "An informal group"},
    "bot.refer.kind.person": {"pl": "Osoba", "en": "A person"},
    "bot.refer.ask_name": {"pl": "Nazwa lub imię i nazwisko klienta:",
                           "en": "The client's name:"},
    "bot.refer.ask_ids": {
        "pl": "Numer KRS (10 cyfr) lub NIP organizacji, jeśli go znasz, np. „KRS 0000123456” "
              "albo „NIP 5252248481”. Możesz pominąć.",
        "en": "The organisation's KRS (10 digits) or NIP number if you know it, e.g. "
              "\"KRS 0000123456\" or \"NIP 5252248481\". You can skip this."},
    "bot.refer.ask_need": {"pl": "Czego klient potrzebuje? Opisz krótko (do {limit} znaków).",
                           "en": "What does the client need? Describe briefly (up to {limit} "
                                 "characters)."},
    "bot.refer.ask_contact": {"pl": "Kontakt do klienta (telefon, e-mail):",
                              "en": "The client's contact (phone, e-mail):"},
    "bot.refer.summary": {
        "pl": "<b>Skierowanie</b> (odbiorca: {org})\nKlient: {client}{ids}\nPotrzeba: {need}\n"
              "Kontakt: {contact}\n\nCzy klient zgodził się na przekazanie tych danych "
              "(odbiorca: {org})?",
        "en": "<b>Referral to {org}</b>\nClient: {client}{ids}\nNeed: {need}\nContact: {contact}"
              "\n\nDid the client agree to share these details with {org}?"},
    "bot.refer.consent_button": {"pl": "✅ Klient się zgodził — wyślij",
                                 "en": "✅ The client agreed — send"},
    "bot.refer.sent": {"pl": "Skierowanie #{id} wysłane (odbiorca: {org}). Dam znać o decyzji.",
                       "en": "Referral #{id} sent to {org}. I will tell you their decision."},
    "bot.refer.nobody": {
        "pl": "Uwaga: nikt z organizacji „{org}” nie korzysta jeszcze z bota; kontakt do nich: "
              "{contact}.",
        "en": "Note: nobody from {org} uses the bot yet; contact them at {contact}."},
    "bot.refer.incoming": {
        "pl": "<b>Nowe skierowanie #{id}</b>\nOd: {org}\nKlient: {client}{ids}\nPotrzeba: {need}\n"
              "Kontakt: {contact}",
        "en": "<b>New referral #{id}</b>\nFrom: {org}\nClient: {client}{ids}\nNeed: {need}\n"
              "Contact: {contact}"},
    "bot.refer.accept": {"pl": "✅ Przyjmij", "en": "✅ Accept"},
    "bot.refer.decline": {"pl": "❌ Odmów", "en": "❌ Decline"},
    "bot.refer.accepted_here": {"pl": "✅ Przyjęto skierowanie #{id} ({client}).",
                                "en": "✅ Accepted referral #{id} ({client})."},
    "bot.refer.declined_here": {"pl": "❌ Odmówiono skierowania #{id} ({client}).",
                                "en": "❌ Declined referral #{id} ({client})."},
    "bot.refer.accepted_referrer": {
        "pl": "{org} przyjmuje skierowanie #{id} ({client}).",
        "en": "{org} accepted referral #{id} ({client})."},
    "bot.refer.declined_referrer": {
        "pl": "{org} nie może przyjąć skierowania #{id} ({client}). Może warto spróbować "
              "innej organizacji: /refer",
        "en": "{org} cannot take referral #{id} ({client}). Perhaps try another organisation: "
              "/refer"},
    "bot.refer.duplicate": {
        "pl": "⚠️ Ten sam klient ({client}) był w ostatnich miesiącach kierowany lub wspierany "
              "także przez: {others}. Warto się skontaktować, by nie dublować wsparcia.",
        "en": "⚠️ The same client ({client}) was recently referred or supported by: {others} "
              "as well. Consider getting in touch to avoid duplicated support."},
    "bot.refer.closed": {"pl": "Skierowanie #{id} zamknięte.", "en": "Referral #{id} closed."},
    "bot.refer.list_sent": {"pl": "<b>Wysłane</b>", "en": "<b>Sent</b>"},
    "bot.refer.list_received": {"pl": "<b>Otrzymane</b>", "en": "<b>Received</b>"},
    "bot.refer.list_empty": {"pl": "Brak skierowań.", "en": "No referrals."},
    "bot.refer.line": {"pl": "#{id} {date} · {org} · {client} — {status}",
                       "en": "#{id} {date} · {org} · {client} — {status}"},
    "bot.refer.close_button": {"pl": "Zamknij #{id}", "en": "Close #{id}"},
    "bot.refer.status.pending": {"pl": "czeka", "en": "pending"},
    "bot.refer.status.accepted": {"pl": "przyjęte", "en": "accepted"},
    "bot.refer.status.declined": {"pl": "odrzucone", "en": "declined"},
    "bot.refer.status.closed": {"pl": "zamknięte", "en": "closed"},
    "bot.refer.purged": {"pl": "(dane usunięte)", "en": "(details erased)"},
})


def _ids(referral: Referral) -> str:
    if referral.krs:
        return f", KRS {referral.krs}"
    if referral.nip:
        return f", NIP {referral.nip}"
    return ""


# --- the conversation ---------------------------------------------------------------------


@handler(access="member", chat="private")
async def cmd_refer(turn: Turn) -> object:
    turn.user_data[NAME] = {}
    turn.say("bot.refer.ask_target")
    return TARGET


@handler(access="member", chat="private")
async def on_target_query(turn: Turn) -> object:
    query = check_length(turn.text, 200)
    own = turn.who.member.organisation_id if turn.who.member else None
    found = [o for o in await find_organisations(turn, query, limit=9) if o.id != own][:8]
    if not found:
        turn.say("bot.refer.none", query=query)
        return None
    turn.say("bot.refer.pick", [[(o.name[:60], cb("ref", "to", o.id))] for o in found])
    return None


@handler(access="member", chat="private")
async def on_target(turn: Turn) -> object:
    from infranet.storage.orgs import get_organisation

    org_id = int_part(turn.data, 2)
    if org_id is None:
        turn.toast(turn.t("bot.button_expired"))
        return None
    org = await get_organisation(turn.session, org_id)
    data = form(turn, NAME)
    data.update(to_org_id=org.id, to_org=org.name)
    turn.edit(turn.t("bot.refer.ask_kind", org=org.name),
              [[(turn.t(f"bot.refer.kind.{k}"), cb("ref", "kind", k))] for k in ("ngo", "group", "person")])
    return KIND


@handler(access="member", chat="private")
async def on_kind(turn: Turn) -> object:
    kind = turn.data[2] if len(turn.data) > 2 else ""
    if kind not in ("ngo", "group", "person") or "to_org_id" not in form(turn, NAME):
        turn.toast(turn.t("bot.button_expired"))
        return None
    form(turn, NAME)["kind"] = kind
    turn.edit(turn.t("bot.refer.ask_name"))
    return CLIENT


@handler(access="member", chat="private")
async def on_client(turn: Turn) -> object:
    data = form(turn, NAME)
    # Each answer cleaned as `create_referral` stores it, so the summary shows what is saved.
    data["client"] = clean_text(check_length(turn.text, NAME_MAX), "client_name", NAME_MAX,
                                required=True)
    if data.get("kind") == "ngo":
        turn.say("bot.refer.ask_ids", [[(turn.t("bot.skip"), cb("ref", "skip"))]])
        return IDS
    turn.say("bot.refer.ask_need", limit=NEED_MAX)
    return NEED


@handler(access="member", chat="private")
async def on_ids(turn: Turn) -> object:
    data = form(turn, NAME)
    if turn.update.callback_query:
        data["krs"] = data["nip"] = None
        turn.edit(turn.t("bot.refer.ask_need", limit=NEED_MAX))
        return NEED
    krs, nip = parse_identifier(check_length(turn.text, 40))  # ValidationFailed: asked again
    data.update(krs=krs, nip=nip)
    turn.say("bot.refer.ask_need", limit=NEED_MAX)
    return NEED


@handler(access="member", chat="private")
async def on_need(turn: Turn) -> object:
    form(turn, NAME)["need"] = clean_text(check_length(turn.text, NEED_MAX), "need", NEED_MAX,
                                          required=True, multiline=True)
    turn.say("bot.refer.ask_contact")
    return CONTACT


@handler(access="member", chat="private")
async def on_contact(turn: Turn) -> object:
    data = form(turn, NAME)
    data["contact"] = clean_text(check_length(turn.text, CONTACT_MAX), "client_contact", CONTACT_MAX,
                                 required=True)
    ids = f", KRS {data['krs']}" if data.get("krs") else f", NIP {data['nip']}" if data.get("nip") else ""
    turn.say("bot.refer.summary", [[(turn.t("bot.refer.consent_button"), cb("ref", "ok"))],
                                   [(turn.t("bot.cancel"), cb("ref", "cancel"))]],
             org=data.get("to_org"), client=data.get("client"), ids=ids, need=data.get("need"),
             contact=data["contact"])
    return CONSENT


@handler(access="member", chat="private")
async def on_consent(turn: Turn) -> object:
    data = form(turn, NAME)
    if turn.data[1:2] == ["cancel"]:
        turn.user_data.pop(NAME, None)
        turn.edit(turn.t("bot.cancelled"))
        return END
    if not all(k in data for k in ("to_org_id", "kind", "client", "need", "contact")):
        turn.toast(turn.t("bot.button_expired"))
        return END
    referral = await create_referral(turn.session, turn.ctx, turn.actor, ReferralInput(
        to_org_id=data["to_org_id"], client_kind=data["kind"], client_name=data["client"],
        client_contact=data["contact"], need=data["need"], consent=True,
        krs=data.get("krs"), nip=data.get("nip")))
    turn.user_data.pop(NAME, None)
    turn.edit(turn.t("bot.refer.sent", id=referral.id, org=referral.to_org.name))
    targets = await organisation_members(turn.session, referral.to_org_id)
    for member in targets:
        lang = member.language or "pl"
        turn.notify(member.telegram_id, tr(lang, "bot.refer.incoming", id=referral.id,
                                           org=referral.from_org.name, client=referral.client_name,
                                           ids=_ids(referral), need=referral.need,
                                           contact=referral.client_contact),
                    [[(tr(lang, "bot.refer.accept"), cb("ref", referral.id, "acc")),
                      (tr(lang, "bot.refer.decline"), cb("ref", referral.id, "dec"))]])
    if not targets:
        org = referral.to_org
        turn.say("bot.refer.nobody", org=org.name, contact=org.contact_email or org.phone or "—")
    found = await duplicates(turn.session, turn.ctx, referral)
    if found:
        _warn_duplicates(turn, referral, found, targets)
    return END


def _warn_duplicates(turn: Turn, referral: Referral, found: list[Duplicate],
                     targets: list[Member]) -> None:
    """Both sides (and only they) hear about the other organisations."""
    def others(lang: str) -> str:
        return ", ".join(
            f"{d.organisation} ({format_date(d.at.astimezone(turn.ctx.tz).date(), lang, weekday=False)})"
            for d in found)

    turn.say("bot.refer.duplicate", client=referral.client_name, others=others(turn.lang))
    for member in targets:
        lang = member.language or "pl"
        turn.notify(member.telegram_id, tr(lang, "bot.refer.duplicate", client=referral.client_name,
                                           others=others(lang)))


def _conversation(ctx: AppContext) -> BaseHandler[Any, Any, Any]:
    text = filters.TEXT & ~filters.COMMAND
    return conversation(ctx, NAME, [CommandHandler("refer", cmd_refer)], {
        TARGET: [MessageHandler(text, on_target_query),
                 CallbackQueryHandler(on_target, pattern=r"^ref:to:")],
        KIND: [CallbackQueryHandler(on_kind, pattern=r"^ref:kind:")],
        CLIENT: [MessageHandler(text, on_client)],
        IDS: [MessageHandler(text, on_ids), CallbackQueryHandler(on_ids, pattern=r"^ref:skip$")],
        NEED: [MessageHandler(text, on_need)],
        CONTACT: [MessageHandler(text, on_contact)],
        CONSENT: [CallbackQueryHandler(on_consent, pattern=r"^ref:(ok|cancel)$")],
    })


# --- decisions, listing ----------------------------------------------------------------------


@handler(access="member")
async def on_referral_button(turn: Turn) -> None:
    referral_id = int_part(turn.data, 1)
    action = turn.data[2] if len(turn.data) > 2 else ""
    if referral_id is None or action not in ("acc", "dec", "close"):
        turn.toast(turn.t("bot.button_expired"))
        return
    if action == "close":
        referral = await close_referral(turn.session, turn.ctx, turn.actor, referral_id)
        turn.reply(turn.t("bot.refer.closed", id=referral.id))
        return
    accept = action == "acc"
    referral = await decide_referral(turn.session, turn.ctx, turn.actor, referral_id, accept)
    turn.edit(turn.t("bot.refer.accepted_here" if accept else "bot.refer.declined_here",
                     id=referral.id, client=referral.client_name))
    key = "bot.refer.accepted_referrer" if accept else "bot.refer.declined_referrer"
    referrer = await turn.session.get(Member, referral.from_member_id) if referral.from_member_id else None
    told = [referrer] if referrer is not None and referrer.is_approved else \
        await organisation_members(turn.session, referral.from_org_id)
    for member in told:
        turn.notify_member(member, key, org=referral.to_org.name, id=referral.id,
                           client=referral.client_name)


@handler(access="member", chat="private")
async def cmd_referrals(turn: Turn) -> None:
    sent, received = await list_referrals(turn.session, turn.actor)
    lines: list[str] = []
    closable: list[Referral] = []
    for title, rows, other in (("bot.refer.list_sent", sent, "to_org"),
                               ("bot.refer.list_received", received, "from_org")):
        lines.append(turn.t(title))
        if not rows:
            lines.append(turn.t("bot.refer.list_empty"))
        for row in rows:
            client = row.client_name or turn.t("bot.refer.purged")
            lines.append(turn.t("bot.refer.line", id=row.id,
                                date=format_date(row.created_at.astimezone(turn.ctx.tz).date(),
                                                 turn.lang, weekday=False),
                                org=getattr(row, other).name, client=client,
                                status=turn.t(f"bot.refer.status.{row.status}")))
            if row.status == ReferralStatus.ACCEPTED and row not in closable:
                closable.append(row)
        lines.append("")
    buttons = [[(turn.t("bot.refer.close_button", id=r.id), cb("ref", r.id, "close"))]
               for r in closable[:10]]
    turn.reply(Html("\n".join(lines).strip()), buttons or None)


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [_conversation(ctx),
            CallbackQueryHandler(on_referral_button, pattern=r"^ref:"),
            CommandHandler("referrals", cmd_referrals)]


__all__ = ["COMMANDS", "esc", "handlers"]
