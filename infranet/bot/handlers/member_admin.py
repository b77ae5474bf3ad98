"""The admins' commands on members: /members (with the waiting requests' buttons),
/approve, /block (asked to confirm first), /unblock, /promote, /demote.

Who may block or promote whom is decided in `network/membership.py`; a member whose
role or status changes gets their command menu anew (`join_decisions.member_menu`).
"""

from __future__ import annotations

from infranet.bot.common import Html, Turn, cb, handler, int_part
from infranet.bot.decisions import send_copies
from infranet.bot.handlers.join_decisions import (
    decision_buttons,
    edit_copies_after_commit,
    member_menu,
    outcome_text,
    request_text,
    tell_member,
)
from infranet.network.membership import (
    block_member,
    check_may_block,
    decide_member,
    demote_member,
    find_member,
    get_member_by_id,
    list_members,
    pending_requests,
    promote_member,
    unblock_member,
)
from infranet.storage.models import Member, MemberStatus, Role


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
        copies = [(r.id, (turn.chat_id, turn.lang, request_text(turn, r, turn.lang),
                          decision_buttons(r.id, turn.lang))) for r in pending[:20]]
        bot, db = turn.context.bot, turn.ctx.db

        async def send() -> None:  # each a copy of its request, edited when it is decided
            for request_id, message in copies:
                await send_copies(bot, db, "jr", request_id, [message])

        turn.after_commit(send)
        return
    member = await find_member(turn.session, turn.args[0])
    decision = await decide_member(turn.session, turn.ctx, turn.actor, member.id, True)
    turn.reply(outcome_text(decision.request)(turn.lang))
    if decision.changed:
        tell_member(turn, decision)
        edit_copies_after_commit(turn, decision.request)


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
    member_menu(turn, member, admin=False)


@handler(access="admin", chat="private")
async def cmd_unblock(turn: Turn) -> None:
    member = await _target(turn, "unblock")
    if member is None:
        return
    member = await unblock_member(turn.session, turn.ctx, turn.actor, member.id)
    turn.say("bot.members.unblocked_admin", id=member.id, name=member.display_name)
    turn.notify_member(member, "bot.members.unblocked_user" if member.is_approved
                       else "bot.members.unblocked_user_join")
    member_menu(turn, member)


@handler(access="admin", chat="private")
async def cmd_promote(turn: Turn) -> None:
    member = await _target(turn, "promote")
    if member is None:
        return
    member = await promote_member(turn.session, turn.ctx, turn.actor, member.id)
    turn.say("bot.members.promoted_admin", id=member.id, name=member.display_name)
    turn.notify_member(member, "bot.members.promoted_user")
    member_menu(turn, member, admin=True)


@handler(access="admin", chat="private")
async def cmd_demote(turn: Turn) -> None:
    member = await _target(turn, "demote")
    if member is None:
        return
    member = await demote_member(turn.session, turn.ctx, turn.actor, member.id)
    turn.say("bot.members.demoted_admin", id=member.id, name=member.display_name)
    turn.notify_member(member, "bot.members.demoted_user")
    member_menu(turn, member, admin=False)
