"""The base of experts and trainers in the chat (members only, private chats only):

    /experts [topic[, district]]   search; without words, asks for them (or "Added by me")
    /expert_add                    name → topics → districts → languages → contact → the
                                   consent text, with "The person agreed" / Cancel

Rules are `infranet.network.experts` (who may, consent, forget), `expert_fields` (the
fields) and `expert_search` (search); this module asks and shows. The /expert_add form
(and the expert's card it shares with the results) is in `expert_form.py`; this module
registers it with the rest.
Under each expert the member added (any, for an admin) are Edit (`xp:<id>:ed:<stamp>`: which
field, then its new value) and Delete (`xp:<id>:rm:<stamp>`, confirmed by
`xp:<id>:rmy:<stamp>`); the stamp is the moment the row was made, so a button never acts on
another row that took the same id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
    form,
    handler,
    int_part,
)
from infranet.bot.handlers.expert_form import (
    ADD_FORM,
    CONSENT,
    CONTACT,
    DISTRICTS,
    LANGUAGES,
    NAME,
    TOPICS,
    card,
    cmd_expert_add,
    district_buttons,
    language_buttons,
    on_consent,
    on_contact,
    on_districts,
    on_languages,
    on_name,
    on_topics,
)
from infranet.context import AppContext
from infranet.errors import NotFound
from infranet.i18n import t
from infranet.network.expert_fields import QUERY_MAX, TOPICS_MAX, parse_contact
from infranet.network.expert_search import experts_added_by, search_experts
from infranet.network.experts import (
    ExpertChanges,
    can_manage,
    district_names,
    forget_expert,
    get_expert,
    update_expert,
)
from infranet.region import AmbiguousDistrict, UnknownDistrict
from infranet.storage.models import Expert
from infranet.validation import plain_text

COMMANDS = [Command("experts", "member"), Command("expert_add", "member")]

SEARCH_FORM = "experts"
SEARCH = "experts.search"
SHOWN = 10  # results shown at once (each with its own Delete button when it is yours)
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


# --- showing an expert ------------------------------------------------------------------


def _row_card(turn: Turn, row: Expert) -> Html:
    return card(turn, turn.lang, row.name, row.topics, district_names(turn.ctx, row), row.languages,
                row.email, row.phone, row.note, number=row.id)


def _stamp(row: Expert) -> int:
    return (row.created_at - EPOCH) // timedelta(microseconds=1)


# --- /experts ---------------------------------------------------------------------------


@handler(access="member", chat="private", writes=False)
async def cmd_experts(turn: Turn) -> object:
    if turn.args:
        await _show(turn, " ".join(turn.args))
        return END
    turn.say("bot.experts.ask_search", [[(turn.t("bot.experts.mine_button"), cb("xp", "mine"))]])
    return SEARCH


@handler(access="member", chat="private", writes=False)
async def on_search(turn: Turn) -> object:
    await _show(turn, turn.text)
    return END


def _criteria(turn: Turn, query: str) -> tuple[str, str | None]:
    """"topic, district" -> (topic, district) when the last part names a district of the
    region; otherwise the whole text is the topic."""
    topic, _comma, last = query.rpartition(",")
    if topic.strip() and last.strip():
        try:
            turn.ctx.region.find(last.strip())
        except AmbiguousDistrict as exc:  # "Olsztyn": the city or the powiat, both in one subregion
            parent = exc.suggestions[0].parent
            return topic.strip(), parent.slug if parent is not None else None
        except UnknownDistrict:
            return query, None
        return topic.strip(), last.strip()
    return query.strip(" ,"), None


async def _show(turn: Turn, text: str) -> None:
    query = plain_text(check_length(text, QUERY_MAX))
    topic, district = _criteria(turn, query)
    found = await search_experts(turn.session, turn.ctx, turn.actor, topic=topic or None,
                                 district=district, limit=SHOWN)
    if not found.experts:
        turn.say("bot.experts.none", query=query)
        return
    _render(turn, turn.t("bot.experts.results", query=query), found.experts, found.more)


@handler(access="member", chat="private", writes=False)
async def on_mine(turn: Turn) -> object:
    """The experts the member added: where a person's request to be forgotten is acted on."""
    rows = await experts_added_by(turn.session, turn.actor, limit=SHOWN + 1)
    if not rows:
        turn.edit(turn.t("bot.experts.none_mine"))
        return END
    _render(turn, turn.t("bot.experts.mine"), rows[:SHOWN], len(rows) > SHOWN, edit=True)
    return END


def _render(turn: Turn, header: Html, rows: list[Expert], more: bool, *, edit: bool = False) -> None:
    parts = [header, *(_row_card(turn, row) for row in rows)]
    if more:
        parts.append(turn.t("bot.experts.more", count=SHOWN))
    buttons = [[(turn.t("bot.experts.edit_button", id=row.id), cb("xp", row.id, "ed", _stamp(row))),
                (turn.t("bot.experts.forget_button", id=row.id), cb("xp", row.id, "rm", _stamp(row)))]
               for row in rows if can_manage(turn.actor, row)]
    if edit:
        turn.edit(Html("\n\n".join(parts)), buttons or None)
    else:
        turn.reply(Html("\n\n".join(parts)), buttons or None)


# --- Delete under an expert ----------------------------------------------------------------


async def _current(turn: Turn) -> Expert | None:
    """The expert the button names, if it is still the row it was made for."""
    expert_id = int_part(turn.data, 1)
    stamp = turn.data[3] if len(turn.data) == 4 else ""
    if expert_id is None or not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 20):
        turn.toast(turn.t("bot.button_expired"))
        return None
    try:
        row = await get_expert(turn.session, turn.actor, expert_id)
    except NotFound:
        row = None
    if row is None or str(_stamp(row)) != stamp:
        turn.edit(turn.t("bot.experts.outdated", id=expert_id))
        return None
    return row


@handler(access="member", chat="private")
async def on_expert_button(turn: Turn) -> None:
    action = turn.data[2] if len(turn.data) > 2 else ""
    row = await _current(turn)
    if row is None:
        return
    if action == "rm":
        if not can_manage(turn.actor, row):
            turn.toast(turn.t("experts.not_yours"))
            return
        stamp = _stamp(row)
        turn.reply(turn.t("bot.experts.forget_ask", name=row.name, id=row.id),
                   [[(turn.t("bot.experts.forget_yes"), cb("xp", row.id, "rmy", stamp)),
                     (turn.t("bot.cancel"), cb("xp", row.id, "keep", stamp))]])
    elif action == "rmy":
        await forget_expert(turn.session, turn.ctx, turn.actor, row.id)  # checks who may
        turn.edit(turn.t("bot.experts.forgotten", id=row.id))
    elif action == "keep":
        turn.edit(turn.t("bot.cancelled"))
    else:
        turn.toast(turn.t("bot.button_expired"))


# --- Edit under an expert -------------------------------------------------------------------

EDIT_FORM = "expert_edit"
EDIT_FIELD, EDIT_VALUE = "expert_edit.field", "expert_edit.value"
EDITABLE = ("topics", "districts", "languages", "contact")


@handler(access="member", chat="private")
async def on_edit_start(turn: Turn) -> object:
    """Edit: which field, then its new value (the member who added the person, or an admin)."""
    row = await _current(turn)
    if row is None:
        return END
    if not can_manage(turn.actor, row):
        turn.toast(turn.t("experts.not_yours"))
        return END
    turn.user_data[EDIT_FORM] = {"id": row.id}
    turn.reply(turn.t("bot.experts.edit_which", id=row.id),
               [[(t(turn.lang, f"field.{name}"), cb("xp", "f", name))] for name in EDITABLE])
    return EDIT_FIELD


@handler(access="member", chat="private", db=False)
async def on_edit_field(turn: Turn) -> object:
    name = turn.data[2] if len(turn.data) > 2 else ""
    if name not in EDITABLE or "id" not in form(turn, EDIT_FORM):
        turn.toast(turn.t("bot.button_expired"))
        return None
    form(turn, EDIT_FORM)["field"] = name
    if name == "topics":
        turn.edit(turn.t("bot.experts.ask_topics", limit=TOPICS_MAX))
    elif name == "districts":
        turn.edit(turn.t("bot.experts.ask_districts"), district_buttons(turn))
    elif name == "languages":
        turn.edit(turn.t("bot.experts.ask_languages"), language_buttons(turn))
    else:
        turn.edit(turn.t("bot.experts.ask_contact"))
    return EDIT_VALUE


@handler(access="member", chat="private")
async def on_edit_value(turn: Turn) -> object:
    data = form(turn, EDIT_FORM)
    name, expert_id = data.get("field"), data.get("id")
    if name not in EDITABLE or not isinstance(expert_id, int):
        turn.toast(turn.t("bot.button_expired"))
        return END
    pressed = turn.data[2] if turn.update.callback_query and len(turn.data) > 2 else None
    value: Any = pressed.split("-") if name == "languages" and pressed else pressed or check_length(
        turn.text, 1000)
    changes = ExpertChanges()
    if name == "contact":
        email, phone = parse_contact(value)
        changes.email, changes.phone = email or "", phone or ""
    else:
        setattr(changes, name, value)
    row = await update_expert(turn.session, turn.ctx, turn.actor, expert_id, changes)
    turn.user_data.pop(EDIT_FORM, None)
    turn.reply(turn.t("bot.experts.edited", id=row.id, card=_row_card(turn, row)))
    return END


# --- registration ----------------------------------------------------------------------------


def handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    text = filters.TEXT & ~filters.COMMAND
    search = conversation(ctx, SEARCH_FORM, [CommandHandler("experts", cmd_experts)], {
        SEARCH: [MessageHandler(text, on_search), CallbackQueryHandler(on_mine, pattern=r"^xp:mine$")],
    })
    add = conversation(ctx, ADD_FORM, [CommandHandler("expert_add", cmd_expert_add)], {
        NAME: [MessageHandler(text, on_name)],
        TOPICS: [MessageHandler(text, on_topics)],
        DISTRICTS: [MessageHandler(text, on_districts),
                    CallbackQueryHandler(on_districts, pattern=r"^xp:d:")],
        LANGUAGES: [MessageHandler(text, on_languages),
                    CallbackQueryHandler(on_languages, pattern=r"^xp:l:")],
        CONTACT: [MessageHandler(text, on_contact)],
        CONSENT: [CallbackQueryHandler(on_consent, pattern=r"^xp:(ok|no):")],
    })
    edit = conversation(ctx, EDIT_FORM, [CallbackQueryHandler(on_edit_start, pattern=r"^xp:[0-9]+:ed:")], {
        EDIT_FIELD: [CallbackQueryHandler(on_edit_field, pattern=r"^xp:f:")],
        EDIT_VALUE: [MessageHandler(text, on_edit_value),
                     CallbackQueryHandler(on_edit_value, pattern=r"^xp:[dl]:")],
    })
    return [search, add, edit, CallbackQueryHandler(on_expert_button, pattern=r"^xp:[0-9]+:")]


__all__ = ["COMMANDS", "handlers"]
