"""The network seen in the chat:

    /insight [year]   members: the year's totals, where support is missing, and the link to
                      the map on the site
    /report [year]    admins: the yearly evaluation as a PDF document (made after the
                      answer, in a thread; the admin is told when it is on its way)

The figures are `infranet.insight`'s; this module only asks and shows.
"""

from __future__ import annotations

import asyncio
from typing import Any

from telegram.ext import BaseHandler, CommandHandler

from infranet.bot.common import Command, Html, Turn, esc, handler
from infranet.context import AppContext
from infranet.i18n import format_amount, t
from infranet.insight.indicators import Period, gather, year_asked
from infranet.insight.white_spots import indicator_spots
from infranet.insight.yearly import build_report, render_html, to_pdf

COMMANDS = [Command("insight", "member"), Command("report", "admin")]


def _year(turn: Turn) -> int:
    """The year asked for (default: this year); a wrong one is refused with the range (the
    handler answers the ValidationFailed in the member's language)."""
    return year_asked(turn.args[0] if turn.args else None,
                      turn.ctx.now().astimezone(turn.ctx.tz).year)


@handler(access="member", writes=False)
async def cmd_insight(turn: Turn) -> None:
    year = _year(turn)
    insight = await gather(turn.session, turn.ctx, Period.year(year))
    lang = turn.lang

    def n(value: int) -> str:
        return format_amount(value, lang, decimals=0)

    spots = indicator_spots(insight, turn.ctx.region, "events",
                            turn.ctx.settings.insight.white_spot_share)
    missing = [s.powiat.name for s in spots if s.kind == "missing"]
    totals = insight.totals
    lines = [turn.t("bot.insight.title", year=year),
             turn.t("bot.insight.totals", organisations=n(totals.get("organisations", 0)),
                    events=n(totals.get("events", 0)), trainings=n(totals.get("trainings", 0)),
                    places=n(totals.get("training_places", 0)),
                    referrals=n(totals.get("referrals_made", 0)),
                    supported=n(totals.get("supported", 0)),
                    subscribers=n(totals.get("subscribers", 0))),
             turn.t("bot.insight.no_events", count=len(missing),
                    powiaty=esc(", ".join(missing[:8]) + (" …" if len(missing) > 8 else "")))
             if missing else turn.t("bot.insight.events_everywhere")]
    link = f"{turn.ctx.settings.http.public_base_url.rstrip('/')}/insight?year={year}" \
        + ("" if lang == "pl" else f"&lang={lang}")
    lines.append(turn.t("bot.insight.link", url=esc(link)))
    turn.reply(Html("\n\n".join(lines)))


@handler(access="admin", chat="private", writes=False)
async def cmd_report(turn: Turn) -> None:
    year = _year(turn)
    report = await build_report(turn.session, turn.ctx, year, turn.lang)
    turn.say("bot.report.preparing", year=year)
    chat_id, bot, lang = turn.chat_id, turn.context.bot, turn.lang

    async def send() -> None:
        # WeasyPrint takes seconds on a large network: in a thread, after the answer.
        pdf = await asyncio.to_thread(to_pdf, render_html(report))
        await bot.send_document(chat_id, document=pdf, filename=f"ewaluacja-{year}.pdf",
                                caption=t(lang, "bot.report.caption", year=year))

    turn.after_commit(send)


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    return [CommandHandler("insight", cmd_insight), CommandHandler("report", cmd_report)]


__all__ = ["COMMANDS", "handlers"]
