"""The admins' Approve / Reject of a join request: the request as each admin's copy
shows it, the buttons, the decision, and telling the person.

Every button names one join request (`jr:<request id>:ok`), not the member: a person's
member row serves all their requests, and a button of an earlier, decided request must
not decide a later one. Once an admin decides, every admin's copy is edited to say what
was decided and by whom (`bot/decisions.py`); a copy pressed after that answers
"already decided by NAME" and changes nothing.
"""

from __future__ import annotations

from typing import Any

from telegram import Message

from infranet.bot.common import Buttons, Html, Turn, cb, handler, int_part, tr
from infranet.bot.decisions import edit_copies
from infranet.network.membership import Decision, decide_request
from infranet.storage.models import Member, MembershipRequest, RequestStatus


def district_names(turn: Turn, data: dict[str, Any]) -> str:
    by_slug = {d.slug: d.name for d in turn.ctx.region.districts}
    return ", ".join(by_slug.get(s, s) for s in data.get("districts", []))


def decision_buttons(request_id: int, lang: str, *, row: bool = False) -> Buttons:
    """Approve / Reject of one request; `row`: a row of a list (/members), where a press
    changes only its own row."""
    tail = ("l",) if row else ()
    return [[(tr(lang, "bot.join.approve"), cb("jr", request_id, "ok", *tail)),
             (tr(lang, "bot.join.reject"), cb("jr", request_id, "no", *tail))]]


def org_type_label(code: str, lang: str) -> str:
    from infranet.bot.handlers.directory import type_label

    return type_label(code, lang)


def request_text(turn: Turn, request: MembershipRequest, lang: str,
                  new_org: dict[str, Any] | None = None) -> Html:
    member = request.member
    org = request.organisation.name if request.organisation else "—"
    new = tr(lang, "bot.join.admin_new_org", type=org_type_label(new_org["type"], lang),
             districts=district_names(turn, new_org), email=new_org["email"]) if new_org else ""
    return tr(lang, "bot.join.admin_request", id=member.id, name=member.display_name,
              username=f"@{member.username}" if member.username else "", org=org, new=Html(new))


def outcome_text(request: MembershipRequest) -> Any:
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


def edit_copies_after_commit(turn: Turn, request: MembershipRequest) -> None:
    bot, db, text_for, request_id = turn.context.bot, turn.ctx.db, outcome_text(request), request.id
    pressed = _pressed(turn)

    async def edit() -> None:
        await edit_copies(bot, db, "jr", request_id, text_for, skip=pressed)

    turn.after_commit(edit)


def _pressed(turn: Turn) -> tuple[int, int] | None:
    query = turn.update.callback_query
    message = query.message if query else None
    return (message.chat.id, message.message_id) if message is not None else None


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
    text = outcome_text(decision.request)(turn.lang)
    if in_list:
        _edit_list_row(turn, request_id, text)
    else:
        turn.edit(text)
    if decision.changed:
        tell_member(turn, decision)
        edit_copies_after_commit(turn, decision.request)
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


def tell_member(turn: Turn, decision: Decision) -> None:
    member, request = decision.member, decision.request
    org = request.organisation.name if request.organisation else "—"
    approved = request.status == RequestStatus.APPROVED
    turn.notify_member(member, "bot.join.approved_user" if approved else "bot.join.rejected_user",
                       org=org)
    member_menu(turn, member)  # a member's menu: their commands appear (or stay hidden)


def member_menu(turn: Turn, member: Member, *, admin: bool | None = None) -> None:
    """The member's command menu as their role now is (`bot/menus.py`), once committed."""
    from infranet.bot import menus

    menus.refresh_after_commit(turn, member)


@handler(access="admin")
async def on_old_button(turn: Turn) -> None:
    turn.toast(turn.t("bot.button_expired"))
    turn.edit(turn.t("bot.join.old_button"))
