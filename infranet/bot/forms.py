"""Forms: persistent conversations every step of which can be left (« Wstecz, Anuluj).

`Form` (the ConversationHandler), the form layer's own buttons (`on_form_nav`), the
answer to a form already saved (`redelivery_guard`) and `conversation()`, which builds
a form; the step history they keep (what « Wstecz puts back) is in `form_history`.
"""

from __future__ import annotations

import copy
import logging
import secrets
import time
import warnings
from collections.abc import Sequence
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, ConversationHandler, TypeHandler, filters

from infranet.bot.application import BotContext, current_scope
from infranet.bot.buttons import Buttons, cb, int_part, parse_cb
from infranet.bot.common_base import END
from infranet.bot.form_history import (
    NAV,
    NAV_PREFIX,
    SWITCH,
    apply_undo,
    on_screen,
    step_rows,
    undo_of,
    with_nav,
)
from infranet.bot.html_text import Html, tr
from infranet.bot.persistence import conv_key
from infranet.bot.speakers import identify
from infranet.bot.turns import Turn, handler, queue_answer
from infranet.context import AppContext
from infranet.i18n import t

log = logging.getLogger(__name__)


def form(turn: Turn, name: str) -> dict[str, Any]:
    """The conversation's form in user_data (created on first use)."""
    data = turn.user_data
    return data.setdefault(name, {})


def _receipt_text(receipt: dict[str, Any]) -> Html:
    return Html(str(receipt.get("text") or ""))


class Form(ConversationHandler[Any]):
    """A persistent ConversationHandler that every step can leave: « Wstecz and Anuluj.

    Around each step it keeps, in user_data[NAV], the open form's id (its idempotency key:
    a save records it, see `record_receipt`), the questions asked so far with the answers
    as they were before each (so « Wstecz restores both), and adds the two buttons to the
    question the step asks. A form whose save is already recorded (its state write was
    lost in a crash) answers "already saved" to any step instead of saving again.
    Starting a form while another is open asks first whether to abandon the open one.
    """

    def __init__(self, ctx: AppContext, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.name:
            raise ValueError("a Form needs a name: its state and receipts are stored under it")
        self.form_name: str = self.name

    async def handle_update(self, update: Any, application: Any, check_result: Any,
                            context: Any) -> object | None:
        state, key, matched, _check = check_result
        scope = current_scope()
        user_data = context.user_data if context.user_data is not None else {}
        nav = user_data.get(NAV) if isinstance(user_data.get(NAV), dict) else None
        mine = nav if nav is not None and nav.get("form") == self.form_name else None
        entry = matched in self.entry_points
        receipts = scope.receipts if scope is not None else {}
        if mine is not None and mine.get("id") in receipts and not entry:
            await self._already_saved(update, context, receipts[mine["id"]], key, user_data)
            return None
        if entry and (scope is None or scope.replay is not update):
            other = open_form(application, update, but=None)
            if other is not None:
                await _ask_switch(update, context, other, self, user_data)
                return None
        before = copy.deepcopy(user_data.get(self.form_name))
        form_id = mine["id"] if mine is not None and not entry else secrets.token_hex(4)
        turns_before = len(scope.turns) if scope is not None else 0
        if scope is not None:
            scope.form = (self.form_name, form_id)
            scope.touched.add(self.form_name)
        result = await super().handle_update(update, application, check_result, context)
        after = self._conversations.get(key)
        if after is None:
            if mine is not None or entry:
                user_data.pop(NAV, None)
            return result
        if entry or mine is None:
            mine = {"form": self.form_name, "id": form_id, "steps": [], "prompt": None}
        elif after != state:
            mine["steps"].append({"state": state, "undo": undo_of(before, user_data.get(self.form_name)),
                                  "prompt": mine.get("prompt")})
        user_data[NAV] = mine
        if scope is not None:
            self._decorate(scope.turns[turns_before:], mine)
        return result

    async def _trigger_timeout(self, context: Any) -> None:
        """A timeout scheduled here, run only if the form has not moved since on any
        instance (the time it last moved is stored with its state), and with the user's
        state read and written as for an update."""
        job = context.job
        data = job.data
        application = data.application
        if not hasattr(application, "process_locked"):
            await super()._trigger_timeout(context)
            return
        key = data.conversation_key
        limit = float(self.conversation_timeout or 0)  # type: ignore[arg-type]

        async def work(scope: Any) -> None:
            row = scope.rows.get(conv_key(self.form_name or "", key))
            moved = float(row.get("at") or 0) if isinstance(row, dict) else None
            if moved is None or time.time() - moved < limit - min(1.0, limit / 4):
                async with self._timeout_jobs_lock:  # ended or moved on (maybe elsewhere)
                    if self.timeout_jobs.get(key) is job:
                        del self.timeout_jobs[key]
                return
            scope_touch(self.form_name)
            await super(Form, self)._trigger_timeout(context)

        await application.process_locked(data.update, work)

    @staticmethod
    def _decorate(turns: list[Any], nav: dict[str, Any]) -> None:
        """Note the question this step asked and give it « Wstecz / Anuluj."""
        for turn in reversed(turns):
            own = [item for item in turn.outbox if item.chat_id is None or item.chat_id == turn.chat_id]
            if not own:
                continue
            item = own[-1]
            rows = step_rows(item.buttons)
            if not turn.refused:
                nav["prompt"] = [str(item.text), rows]
            item.buttons = with_nav(turn.lang, nav, rows)
            if item.chat_id is None and on_screen(turn, item):  # a second press: no empty edit
                turn.outbox.remove(item)
                turn.toast_text = turn.toast_text or turn.t("bot.button_expired")
            return

    async def _already_saved(self, update: Update, context: BotContext, receipt: dict[str, Any],
                             key: Any, user_data: dict[Any, Any]) -> None:
        """The form was saved, but its end was not written (a crash in between): end it now
        and say what was saved; save nothing again."""
        user_data.pop(self.form_name, None)
        user_data.pop(NAV, None)
        self._update_state(END, key)
        who = await identify(None, update, user_data, memory=context.people)
        query = update.callback_query
        message = update.effective_message
        parts = parse_cb(query.data) if query is not None else []
        cancel = (parts[-1:] == ["x"] or parts[:2] == [NAV_PREFIX, "x"]) or (
            query is None and message is not None and (message.text or "").startswith("/cancel"))
        text = tr(who.lang, "bot.form.saved_not_cancelled" if cancel else "bot.form.already_saved",
                  what=_receipt_text(receipt))
        await _answer_plainly(update, context, text)


async def _form_turn(update: Update, context: BotContext) -> Turn:
    """A Turn for the form layer's own answers (no session: it only moves the form)."""
    who = await identify(None, update, context.user_data, memory=context.people)
    return Turn(update, context, None, who)  # type: ignore[arg-type]


async def _answer_plainly(update: Update, context: BotContext, text: str, buttons: Buttons = None) -> None:
    """Edit the pressed message (or reply), once the state is written."""
    turn = await _form_turn(update, context)
    turn.edit(text, buttons)
    await queue_answer(turn)


def open_form(application: Any, update: Update, but: Form | None) -> tuple[Form, Any] | None:
    """The form open for this update's user and chat (and its key), if any."""
    for handler_ in application.handlers.get(0, []):
        if isinstance(handler_, Form) and handler_ is not but:
            try:
                key = handler_._get_key(update)
            except RuntimeError:
                continue
            if handler_._conversations.get(key) is not None:
                return handler_, key
    return None


def _form_label(lang: str, name: str) -> str:
    key = f"bot.form.name.{name}"
    label = t(lang, key)
    return f"/{name}" if label == key else label


async def _ask_switch(update: Update, context: BotContext, other: tuple[Form, Any], new: Form,
                      user_data: dict[Any, Any]) -> None:
    """A second form while one is open: ask whether to go on with the first or abandon it."""
    first, _key = other
    nonce = secrets.token_hex(4)
    user_data[SWITCH] = {"id": nonce, "to": new.name, "update": update.to_dict()}
    who = await identify(None, update, user_data, memory=context.people)
    lang = who.lang
    old_label, new_label = _form_label(lang, first.name or ""), _form_label(lang, new.name or "")
    text = tr(lang, "bot.form.switch_ask", old=old_label, new=new_label)
    buttons = [[(t(lang, "bot.form.switch_keep", old=old_label), cb(NAV_PREFIX, "k", nonce))],
               [(t(lang, "bot.form.switch_new", old=old_label, new=new_label),
                 cb(NAV_PREFIX, "n", nonce))]]
    turn = await _form_turn(update, context)
    turn.reply(text, buttons)
    await queue_answer(turn)


async def on_form_nav(update: Update, context: BotContext) -> None:
    """The form layer's buttons: « Wstecz and Anuluj of a step (`fm:b|x:<form id>:<depth>`),
    and the answer to "abandon the open form?" (`fm:k|n:<nonce>`). Each acts only on the
    form and step it was shown with; an outdated one says so and changes nothing."""
    query = update.callback_query
    assert query is not None
    parts = parse_cb(query.data)
    action = parts[1] if len(parts) > 1 else ""
    user_data = context.user_data if context.user_data is not None else {}
    who = await identify(None, update, user_data, memory=context.people)
    lang = who.lang
    application = context.application
    opened = open_form(application, update, but=None)
    nav = user_data.get(NAV) if isinstance(user_data.get(NAV), dict) else None

    async def outdated() -> None:
        turn = await _form_turn(update, context)
        turn.toast(tr(lang, "bot.button_expired"))
        await queue_answer(turn)

    if action in ("k", "n"):
        switch = user_data.get(SWITCH) if isinstance(user_data.get(SWITCH), dict) else None
        if switch is None or len(parts) < 3 or switch.get("id") != parts[2]:
            await outdated()
            return
        user_data.pop(SWITCH, None)
        if action == "k" or opened is None:
            if opened is None:  # the first form ended meanwhile: nothing to keep
                await outdated()
                return
            prompt = (nav or {}).get("prompt") or [tr(lang, "bot.form.continue"), []]
            await _answer_plainly(update, context, Html(prompt[0]),
                                  with_nav(lang, nav or {"steps": [], "id": "-"}, prompt[1]))
            return
        first, key = opened
        first._update_state(END, key)
        user_data.pop(first.name, None)
        user_data.pop(NAV, None)
        await _answer_plainly(update, context, tr(lang, "bot.form.abandoned",
                                                  old=_form_label(lang, first.name or "")))
        replay = Update.de_json(switch["update"], context.bot)
        scope = current_scope()
        if scope is not None:
            scope.replay = replay  # the form it starts does not ask again
        target = next((h for h in application.handlers.get(0, [])
                       if isinstance(h, Form) and h.name == switch.get("to")), None)
        check = target.check_update(replay) if target is not None else None
        if target is not None and check:
            await target.handle_update(replay, application, check, context)
        return
    form_id = parts[2] if len(parts) > 2 else ""
    depth = int_part(parts, 3)
    if opened is None or nav is None or nav.get("id") != form_id or nav.get("form") != opened[0].name:
        await outdated()
        return
    current, key = opened
    steps = nav.setdefault("steps", [])
    if action == "x":
        current._update_state(END, key)
        user_data.pop(current.name, None)
        user_data.pop(NAV, None)
        await _answer_plainly(update, context, tr(lang, "bot.cancelled"))
        return
    if action != "b" or depth != len(steps) or not steps:
        await outdated()
        return
    step = steps.pop()
    apply_undo(user_data, current.name or "", step.get("undo") or {})
    current._update_state(step["state"], key)
    nav["prompt"] = step.get("prompt")
    prompt = nav["prompt"] or [tr(lang, "bot.form.continue"), []]
    scope_touch(current.name)
    await _answer_plainly(update, context, Html(prompt[0]), with_nav(lang, nav, prompt[1]))


def scope_touch(name: str | None) -> None:
    """Mark a conversation as moved in this update (its "last moved" time is written)."""
    scope = current_scope()
    if scope is not None and name:
        scope.touched.add(name)


def _end_saved_form(context: BotContext, update: Update, receipt: dict[str, Any]) -> None:
    """End the open form that `receipt` shows saved (its end was lost in a crash)."""
    user_data = context.user_data if context.user_data is not None else {}
    nav = user_data.get(NAV)
    opened = open_form(context.application, update, but=None)
    if opened is None or not isinstance(nav, dict) or nav.get("form") != opened[0].name:
        return
    if current_scope() is not None and nav.get("id") in current_scope().receipts:  # type: ignore[union-attr]
        form_, key = opened
        form_._update_state(END, key)
        user_data.pop(form_.name, None)
        user_data.pop(NAV, None)


def redelivery_guard() -> TypeHandler[Update, BotContext, Any]:
    """Telegram redelivers an update whose handling it did not see finish (a crash right
    after a save): if that update saved a form, say it is already saved, do nothing else."""
    from telegram.ext import ApplicationHandlerStop

    async def check(update: Update, context: BotContext) -> None:
        scope = current_scope()
        if scope is None:
            return
        for receipt in scope.receipts.values():
            if isinstance(receipt, dict) and receipt.get("update") == update.update_id:
                _end_saved_form(context, update, receipt)
                who = await identify(None, update, context.user_data, memory=context.people)
                await _answer_plainly(update, context, tr(who.lang, "bot.form.already_saved",
                                                          what=_receipt_text(receipt)))
                raise ApplicationHandlerStop
        return

    return TypeHandler(Update, check)


def conversation(
    ctx: AppContext, name: str, entry_points: list[BaseHandler[Any, Any, Any]],
    states: dict[object, list[BaseHandler[Any, Any, Any]]],
    fallbacks: Sequence[BaseHandler[Any, Any, Any]] = (),
) -> ConversationHandler[Any]:
    """A persistent conversation with `/cancel` as fallback and a timeout that says so.

    The form lives in `user_data[name]`; cancel and timeout clear it.
    """

    @handler(db=False)
    async def cancel(turn: Turn) -> int:
        turn.user_data.pop(name, None)
        turn.say("bot.cancelled")
        return END

    async def timed_out(update: Update, context: BotContext) -> None:
        if context.user_data is not None:
            context.user_data.pop(name, None)
            nav = context.user_data.get(NAV)
            if isinstance(nav, dict) and nav.get("form") == name:
                context.user_data.pop(NAV, None)
        if update.effective_chat is None:
            return
        turn = await _form_turn(update, context)
        turn.reply(turn.t("bot.timed_out"))
        await queue_answer(turn)

    all_states = dict(states)
    all_states[ConversationHandler.TIMEOUT] = [TypeHandler(Update, timed_out)]
    # The private-chat link a group gets (t.me/<bot>?start=<command>) starts the form.
    entries = list(entry_points)
    for entry in entry_points:
        if isinstance(entry, CommandHandler):
            for command in sorted(entry.commands):
                entries.append(CommandHandler(
                    "start", entry.callback,
                    filters=filters.ChatType.PRIVATE & filters.Regex(rf"^/start(@\w+)? {command}$")))
    with warnings.catch_warnings():
        # Text and button steps mixed: per_message=False is intended.
        warnings.filterwarnings("ignore", message=r".*per_message.*")
        return Form(
            ctx, entry_points=entries, states=all_states,
            fallbacks=[CommandHandler("cancel", cancel), *fallbacks],
            name=name, persistent=True, allow_reentry=True,
            conversation_timeout=ctx.settings.telegram.conversation_timeout_s,
        )


