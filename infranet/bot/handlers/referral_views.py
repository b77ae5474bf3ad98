"""Referrals as people see them after they were sent: a referral's details with the
buttons its viewer may use (Accept / Decline for the organisation it was sent to,
Close once accepted), the decision and telling the referrer, and /referrals, the sent
and received referrals a page at a time.

A client's details never go to a group, and only those who may see them do
(`network/referrals.py`); the text helpers here also word the /refer form's messages.
"""

from __future__ import annotations

from datetime import datetime

from infranet.bot.common import Html, Turn, cb, handler, int_part, rows_of, tr
from infranet.context import AppContext
from infranet.i18n import format_date, t
from infranet.network.membership import organisation_members
from infranet.network.referrals import (
    Duplicate,
    ReferralView,
    close_referral,
    decide_referral,
    list_referrals,
    open_referral,
)
from infranet.storage.models import Member, Referral, ReferralStatus


def ids_text(referral: Referral) -> str:
    if referral.krs:
        return f", KRS {referral.krs}"
    if referral.nip:
        return f", NIP {referral.nip}"
    return ""


def time_text(ctx: AppContext, at: datetime, lang: str) -> str:
    """"3 grudnia 2026, 14:05": when a referral was sent or decided, in local time."""
    local = at.astimezone(ctx.tz)
    return f"{format_date(local.date(), lang, weekday=False)}, {local:%H:%M}"


def others_text(ctx: AppContext, found: list[Duplicate], lang: str) -> str:
    return ", ".join(f"{d.organisation} ({format_date(d.at.astimezone(ctx.tz).date(), lang, weekday=False)})"
                     for d in found)


def _status(turn: Turn, view: ReferralView) -> str:
    row = view.referral
    if row.status == ReferralStatus.PENDING:
        return turn.t("bot.refer.status_sent")
    status = turn.t(f"bot.refer.status.{row.status}")
    if row.status == ReferralStatus.CLOSED:
        return f"{status}, {time_text(turn.ctx, row.closed_at or row.updated_at, turn.lang)}"
    return turn.t("bot.refer.status_by", status=status, who=view.status_by,
                  when=time_text(turn.ctx, row.decided_at or row.updated_at, turn.lang))


def _detail(turn: Turn, view: ReferralView) -> tuple[Html, list[list[tuple[str, str]]]]:
    """A referral's detail view and the buttons its viewer may use."""
    row = view.referral
    text = turn.t("bot.refer.detail", id=row.id, from_org=row.from_org.name,
                  referrer=f" ({view.referrer})" if view.referrer else "", to_org=row.to_org.name,
                  sent=time_text(turn.ctx, row.created_at, turn.lang), status=_status(turn, view))
    purged = turn.t("bot.refer.purged")
    if view.full:
        client = turn.t("bot.refer.detail_client", client=row.client_name or purged, ids=ids_text(row),
                        need=row.need or purged, contact=row.client_contact or purged)
    else:
        client = turn.t("bot.refer.detail_hidden")
    buttons: list[list[tuple[str, str]]] = []
    org_id = turn.who.member.organisation_id if turn.who.member else None
    if row.status == ReferralStatus.PENDING and org_id == row.to_org_id:
        buttons.append([(turn.t("bot.refer.accept"), cb("ref", row.id, "acc")),
                        (turn.t("bot.refer.decline"), cb("ref", row.id, "dec"))])
    if row.status == ReferralStatus.ACCEPTED and view.full:
        buttons.append([(turn.t("bot.refer.close_button", id=row.id), cb("ref", row.id, "close"))])
    return Html(f"{text}\n{client}"), buttons


@handler(access="member")
async def on_referral_button(turn: Turn) -> None:
    if turn.data[1:2] == ["list"]:
        page = int_part(turn.data, 2)
        if page is None or not 0 <= page < 10_000:
            turn.toast(turn.t("bot.button_expired"))
            return
        await _list(turn, page, edit=True)
        return
    referral_id = int_part(turn.data, 1)
    action = turn.data[2] if len(turn.data) > 2 else ""
    if referral_id is None or not 0 < referral_id < 2**31 or action not in ("acc", "dec", "close", "view"):
        turn.toast(turn.t("bot.button_expired"))
        return
    if not turn.is_private:  # a client's details never go to a group
        turn.toast(turn.t("bot.private_only"))
        return
    if action == "view":
        turn.reply(*_detail(turn, await open_referral(turn.session, turn.actor, referral_id)))
        return
    if action == "close":
        referral = await close_referral(turn.session, turn.ctx, turn.actor, referral_id)
        turn.reply(turn.t("bot.refer.closed", id=referral.id))
        return
    view = await open_referral(turn.session, turn.actor, referral_id)
    if view.full and view.referral.status != ReferralStatus.PENDING:
        # An old Accept/Decline: the message is brought up to date, nothing changes.
        turn.edit(*_detail(turn, view))
        turn.toast(t(turn.lang, "referrals.decided_by", name=view.status_by))
        return
    accept = action == "acc"
    referral = await decide_referral(turn.session, turn.ctx, turn.actor, referral_id, accept)
    view = await open_referral(turn.session, turn.actor, referral_id)
    text, buttons = _detail(turn, view)
    done = turn.t("bot.refer.accepted_here" if accept else "bot.refer.declined_here", id=referral.id)
    # The decision keeps the client's details on screen: who, what they need, how to reach them.
    turn.edit(Html(f"{done}\n\n{text}"), buttons)
    key = "bot.refer.accepted_referrer" if accept else "bot.refer.declined_referrer"
    referrer = await turn.session.get(Member, referral.from_member_id) if referral.from_member_id else None
    told = [referrer] if referrer is not None and referrer.is_approved else \
        await organisation_members(turn.session, referral.from_org_id)
    for member in told:
        lang = member.language or "pl"
        turn.notify(member.telegram_id, tr(
            lang, key, org=referral.to_org.name, id=referral.id, client=referral.client_name,
            who=view.status_by, when=time_text(turn.ctx, referral.decided_at or turn.ctx.now(), lang)),
            [[(tr(lang, "bot.refer.details"), cb("ref", referral.id, "view"))]])


PAGE = 8


@handler(access="member", chat="private")
async def cmd_referrals(turn: Turn) -> None:
    await _list(turn, 0, edit=False)


async def _list(turn: Turn, page: int, *, edit: bool) -> None:
    """Sent and received referrals, a page of each, with a button per referral that opens
    its details (and from there accept, decline or close)."""
    sent, received, total_sent, total_received = await list_referrals(
        turn.session, turn.actor, limit=PAGE, offset=page * PAGE)
    pages = max(1, -(-max(total_sent, total_received) // PAGE))
    lines: list[str] = []
    buttons: list[tuple[str, str]] = []
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
            buttons.append((f"#{row.id}", cb("ref", row.id, "view")))
        lines.append("")
    if sent or received:
        lines.append(turn.t("bot.refer.list_more", page=page + 1, pages=pages))
    keyboard = rows_of(buttons, 4)
    nav: list[tuple[str, str]] = []
    if page > 0:
        nav.append((turn.t("bot.prev"), cb("ref", "list", page - 1)))
    if page + 1 < pages:
        nav.append((turn.t("bot.next"), cb("ref", "list", page + 1)))
    if nav:
        keyboard.append(nav)
    text = Html("\n".join(lines).strip())
    if edit:
        turn.edit(text, keyboard or None)
    else:
        turn.reply(text, keyboard or None)
