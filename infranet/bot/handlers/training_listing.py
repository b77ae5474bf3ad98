"""/trainings: the open recruitment notices, a page at a time (in an area, if asked),
and to an organisation's members in private their own notices with Edit and Cancel;
the Cancel button itself is here, Edit opens the form (`training_form`). `cost_text`
is how both a notice here and the form's summary say the cost.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from infranet.bot.common import Html, Turn, cb, check_length, esc, handler, int_part
from infranet.bot.handlers.event_ui import district_at, district_question, edit_if_changed, shorten, when_text
from infranet.calendar import trainings as notices
from infranet.i18n import format_date
from infranet.region import UnknownDistrict
from infranet.storage.models import EventStatus, TrainingStatus

PAGE_SIZE = 6


def _notice_text(turn: Turn, view: notices.TrainingView) -> str:
    training = view.training
    live = [e for e in view.sessions if e.status == EventStatus.SCHEDULED]
    sessions = [when_text(turn.ctx, e.starts_at, e.ends_at, False, turn.lang) if not e.all_day else
                when_text(turn.ctx, e.starts_at, e.ends_at - timedelta(hours=1), True, turn.lang)
                for e in live]
    first = sessions[0] if sessions else "—"
    if len(sessions) > 1:
        first = turn.t("bot.trainings.more_sessions", first=first, count=len(sessions) - 1)
    else:
        first = esc(first)
    apply = shorten(training.apply_url or training.apply_email or training.apply_phone or "—", 120)
    places = training.places if training.places else turn.t("bot.trainings.l.unlimited")
    return "\n".join([
        f"<b>{esc(shorten(training.title, 120))}</b> — {esc(shorten(training.organisation.name, 80))}",
        f"{turn.t('bot.trainings.l.sessions')}: {first}",
        f"{turn.t('bot.trainings.l.deadline')}: {esc(format_date(training.deadline, turn.lang))}",
        f"{turn.t('bot.trainings.l.target')}: {esc(shorten(training.target_group, 120))}; "
        f"{turn.t('bot.trainings.l.places')}: {esc(places)}; "
        f"{turn.t('bot.trainings.l.cost')}: {esc(cost_text(turn, training.cost_pln))}",
        f"{turn.t('bot.trainings.l.apply')}: {esc(apply)} ({esc(training.district.name)})",
    ])


def cost_text(turn: Turn, cost: Any) -> str:
    if cost is None:
        return turn.t("bot.trainings.free")
    return turn.t("bot.trainings.cost_pln", amount=f"{cost:.2f}".replace(".", "," if turn.lang == "pl"
                                                                         else "."))


async def _page(turn: Turn, area_key: str, page: int) -> tuple[Html, list[list[tuple[str, str]]]]:
    area = None if area_key == "-" else district_at(turn.ctx, area_key)
    found = await notices.list_open_trainings(turn.session, turn.ctx, area=area.slug if area else None)
    area_text = turn.t("bot.events.in_area", name=area.name) if area else ""
    if not found:
        return turn.t("bot.trainings.list_empty", area=area_text), []
    pages = (len(found) + PAGE_SIZE - 1) // PAGE_SIZE
    page = max(0, min(page, pages - 1))
    lines: list[str] = [turn.t("bot.trainings.list_title", area=area_text)]
    lines += [_notice_text(turn, v) for v in found[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]]
    if pages > 1:
        lines.append(turn.t("bot.events.page", page=page + 1, pages=pages))
    nav: list[tuple[str, str]] = []
    if page > 0:
        nav.append((turn.t("bot.prev"), cb("tr", "p", page - 1, area_key)))
    if page < pages - 1:
        nav.append((turn.t("bot.next"), cb("tr", "p", page + 1, area_key)))
    return Html("\n\n".join(lines)), [nav] if nav else []


@handler()
async def cmd_trainings(turn: Turn) -> None:
    text = " ".join(turn.args).strip()
    area_key = "-"
    if text:
        try:
            district = turn.ctx.region.match(check_length(text, 120))
        except UnknownDistrict as exc:  # buttons that list the district chosen
            districts = turn.ctx.region.districts
            turn.reply(*district_question(turn, exc, "tr",
                                          pick=lambda d: cb("tr", "p", 0, districts.index(d))))
            return
        area_key = str(turn.ctx.region.districts.index(district))
    body, buttons = await _page(turn, area_key, 0)
    turn.reply(body, buttons)
    member = turn.who.member
    if turn.is_private and turn.who.is_member and member is not None and member.organisation_id:
        own = await notices.list_open_trainings(turn.session, turn.ctx,
                                                organisation_id=member.organisation_id,
                                                include_pending=True)
        for view in own[:PAGE_SIZE]:
            turn.reply(Html(_notice_text(turn, view)),
                       [[(turn.t("bot.trainings.edit"), cb("tr", "e", view.training.id)),
                         (turn.t("bot.trainings.cancel"), cb("tr", "c", view.training.id))]])


@handler()
async def on_page(turn: Turn) -> None:
    page = int_part(turn.data, 2)
    area_key = turn.data[3] if len(turn.data) > 3 else "-"
    if page is None or (area_key != "-" and district_at(turn.ctx, area_key) is None):
        turn.toast(turn.t("bot.button_expired"))
        return
    body, buttons = await _page(turn, area_key, page)
    edit_if_changed(turn, body, buttons)


@handler(access="member", chat="private")
async def on_cancel(turn: Turn) -> None:
    training_id = int_part(turn.data, 2)
    if training_id is None:
        turn.toast(turn.t("bot.button_expired"))
        return
    view = await notices.get_training(turn.session, training_id)
    turn.actor.require_org(view.training.organisation_id)
    if view.training.status == TrainingStatus.CANCELLED:
        turn.edit(turn.t("bot.trainings.cancelled", title=view.training.title))
        return
    if len(turn.data) > 3 and turn.data[3] == "y":
        await notices.cancel_training(turn.session, turn.ctx, turn.actor, training_id)
        turn.edit(turn.t("bot.trainings.cancelled", title=view.training.title))
        return
    turn.edit(turn.t("bot.trainings.confirm_cancel", title=view.training.title), [[
        (turn.t("bot.trainings.cancel"), cb("tr", "c", training_id, "y"))]])
