"""The /refer form: a guided referral of a client to another organisation (which
organisation, who the client is, what they need, how to reach them, the member's
consent), then telling that organisation once it is saved.

Nothing about the client is stored before the member has consented and, when the same
client was supported elsewhere lately, chosen to send anyway. The organisation is told
in the bot, or by e-mail when nobody there is reached (`bot/reach.py`); the conversation
is registered in `referrals.py`.
"""

from __future__ import annotations

import logging
from typing import Any

from infranet.bot.application import BotContext
from infranet.bot.common import END, Html, Turn, cb, check_length, form, handler, int_part, send_html, tr
from infranet.bot.handlers.directory import find_organisations
from infranet.bot.handlers.referral_views import ids_text, others_text
from infranet.bot.reach import EMAIL, NONE, Notice, OrgReach, deliver, reach_of
from infranet.errors import NotFound
from infranet.i18n import t
from infranet.network.referrals import (
    CONTACT_MAX,
    NAME_MAX,
    NEED_MAX,
    Duplicate,
    ReferralInput,
    create_referral,
    duplicates,
    parse_identifier,
    preview_referral,
)
from infranet.storage.models import Member, Referral
from infranet.validation import clean_text

log = logging.getLogger(__name__)

NAME = "refer"
TARGET, KIND, CLIENT, IDS, NEED, CONTACT, CONSENT = (
    "ref.target", "ref.kind", "ref.client", "ref.ids", "ref.need", "ref.contact", "ref.consent")


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


async def _reach(turn: Turn, org_id: int) -> OrgReach:
    found = await reach_of(turn.session, [org_id], but=turn.who.telegram_id)
    if org_id not in found:
        raise NotFound("error.not_found.organisation", id=org_id)
    return found[org_id]


def _unreachable(turn: Turn, target: OrgReach) -> None:
    turn.say("bot.refer.unreachable", org=target.name, contact=target.contact)


@handler(access="member", chat="private")
async def on_target(turn: Turn) -> object:
    org_id = int_part(turn.data, 2)
    if org_id is None or not 0 < org_id < 2**31:
        turn.toast(turn.t("bot.button_expired"))
        return None
    target = await _reach(turn, org_id)
    if target.way == NONE:
        # Said before a word about the client is asked; the list stays for another pick.
        _unreachable(turn, target)
        return None
    data = form(turn, NAME)
    data.update(to_org_id=target.org_id, to_org=target.name)
    text = turn.t("bot.refer.ask_kind", org=target.name)
    if target.way == EMAIL:
        text = Html(f"{turn.t('bot.refer.via_email', org=target.name, email=target.email)}\n\n{text}")
    turn.edit(text, [[(turn.t(f"bot.refer.kind.{k}"), cb("ref", "kind", k))]
                     for k in ("ngo", "group", "person")])
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


def _summary(turn: Turn, data: dict[str, Any], target: OrgReach) -> tuple[Html, Any]:
    """The confirmation screen: the answers, how the organisation will be reached (before
    anything is stored), and the consent question."""
    ids = f", KRS {data['krs']}" if data.get("krs") else f", NIP {data['nip']}" if data.get("nip") else ""
    text = turn.t("bot.refer.summary", org=target.name, client=data.get("client"), ids=ids,
                  need=data.get("need"), contact=data.get("contact"))
    if target.way == EMAIL:
        text = Html(f"{text}\n\n{turn.t('bot.refer.via_email', org=target.name, email=target.email)}")
    return text, [[(turn.t("bot.refer.consent_button"), cb("ref", "ok"))],
                  [(turn.t("bot.cancel"), cb("ref", "cancel"))]]


@handler(access="member", chat="private")
async def on_contact(turn: Turn) -> object:
    data = form(turn, NAME)
    data["contact"] = clean_text(check_length(turn.text, CONTACT_MAX), "client_contact", CONTACT_MAX,
                                 required=True)
    if "to_org_id" not in data:
        turn.say("bot.button_expired")
        return END
    target = await _reach(turn, data["to_org_id"])
    if target.way == NONE:  # nobody left since the pick: said before anything is stored
        turn.user_data.pop(NAME, None)
        _unreachable(turn, target)
        return END
    data["way"] = target.way
    turn.reply(*_summary(turn, data, target))
    return CONSENT


def _input(data: dict[str, Any]) -> ReferralInput:
    return ReferralInput(to_org_id=data["to_org_id"], client_kind=data["kind"],
                         client_name=data["client"], client_contact=data["contact"],
                         need=data["need"], consent=True, krs=data.get("krs"), nip=data.get("nip"))


@handler(access="member", chat="private")
async def on_consent(turn: Turn) -> object:
    """The consent button, then (when the same client was supported elsewhere) "send
    anyway": nothing about the client is stored before the member has chosen."""
    data = form(turn, NAME)
    choice = turn.data[1] if len(turn.data) > 1 else ""
    if choice == "cancel":
        turn.user_data.pop(NAME, None)
        turn.edit(turn.t("bot.cancelled"))
        return END
    if not all(k in data for k in ("to_org_id", "kind", "client", "need", "contact")):
        turn.toast(turn.t("bot.button_expired"))
        return END
    target = await _reach(turn, data["to_org_id"])
    if target.way == NONE:
        turn.user_data.pop(NAME, None)
        turn.edit(turn.t("bot.refer.unreachable", org=target.name, contact=target.contact))
        return END
    if target.way != data.get("way"):  # the summary no longer tells the truth: show it again
        data["way"] = target.way
        text, buttons = _summary(turn, data, target)
        turn.edit(Html(f"{turn.t('bot.refer.reach_changed')}\n\n{text}"), buttons)
        return CONSENT
    if choice == "ok":
        found = await preview_referral(turn.session, turn.ctx, turn.actor, _input(data))
        if found:
            warning = turn.t("bot.refer.duplicate", client=data["client"],
                             others=others_text(turn.ctx, found, turn.lang))
            turn.edit(Html(f"{warning}\n\n{turn.t('bot.refer.duplicate_ask')}"),
                      [[(turn.t("bot.refer.send_anyway"), cb("ref", "send"))],
                       [(turn.t("bot.cancel"), cb("ref", "cancel"))]])
            return CONSENT
    elif choice != "send":
        turn.toast(turn.t("bot.button_expired"))
        return None
    return await _send(turn, data, target)


async def _send(turn: Turn, data: dict[str, Any], target: OrgReach) -> object:
    referral = await create_referral(turn.session, turn.ctx, turn.actor, _input(data))
    found = await duplicates(turn.session, turn.ctx, referral)
    turn.user_data.pop(NAME, None)
    if target.way == EMAIL:
        turn.edit(turn.t("bot.refer.sent_email", id=referral.id, org=target.name, email=target.email))
    else:
        turn.edit(turn.t("bot.refer.sent", id=referral.id, org=target.name))
    context, chat_id, lang, referral_id = turn.context, turn.chat_id, turn.lang, referral.id
    turn.after_commit(lambda: _deliver(context, chat_id, lang, referral_id, target, found))
    return END


async def _deliver(context: BotContext, chat_id: int, lang: str, referral_id: int,
                   target: OrgReach, found: list[Duplicate]) -> None:
    """Once the referral is committed: its organisation is told in the bot (or, with
    nobody reached there, by e-mail), and the referrer hears when it went by e-mail or
    did not arrive at all."""
    ctx = context.infra
    mail_lang = ctx.settings.newsletter.language
    async with ctx.db.read() as session:
        referral = await session.get(Referral, referral_id)
        if referral is None:
            return
        referrer = (await session.get(Member, referral.from_member_id)
                    if referral.from_member_id else None)
        member = referrer.display_name if referrer else "—"
        from_org = referral.from_org
        params = {"id": referral.id, "org": from_org.name, "client": referral.client_name,
                  "ids": ids_text(referral), "need": referral.need, "contact": referral.client_contact}
        from_contact = ", ".join(x for x in (from_org.contact_email, from_org.phone) if x) or "—"
    client = referral.client_name

    def telegram(member_lang: str) -> tuple[str, Any]:
        text = tr(member_lang, "bot.refer.incoming", **params)
        if found:
            warning = tr(member_lang, "bot.refer.duplicate", client=client,
                         others=others_text(ctx, found, member_lang))
            text = Html(f"{text}\n\n{warning}")
        return text, [[(tr(member_lang, "bot.refer.accept"), cb("ref", referral_id, "acc")),
                       (tr(member_lang, "bot.refer.decline"), cb("ref", referral_id, "dec"))]]

    duplicate = ("\n\n" + t(mail_lang, "bot.refer.duplicate", client=client,
                            others=others_text(ctx, found, mail_lang))) if found else ""
    notice = Notice(
        telegram, subject=t(mail_lang, "bot.refer.email_subject", id=referral_id, org=from_org.name),
        body=t(mail_lang, "bot.refer.email_body", member=member, from_contact=from_contact,
               link=f"https://t.me/{context.bot.username}", duplicate=duplicate, **params),
        reply_to=from_org.contact_email)
    try:
        how = await deliver(ctx, context.bot, target, notice)
    except Exception:
        log.exception("referral %s: could not reach organisation %s", referral_id, target.org_id)
        how = NONE
    if how == EMAIL:
        await send_html(context.bot, chat_id, tr(lang, "bot.refer.emailed", id=referral_id,
                                                 org=target.name, email=target.email))
    elif how == NONE:
        await send_html(context.bot, chat_id, tr(lang, "bot.refer.not_delivered", id=referral_id,
                                                 org=target.name, contact=target.contact))
