"""The bot's handler modules, and the conventions every one of them follows.

Registration
    Each module in `MODULES` (`infranet/bot/handlers/<name>.py`) exposes
        COMMANDS: list[Command]                       # for /help and the command menu
        def handlers(ctx: AppContext) -> list[BaseHandler]
    and may expose
        def jobs(ctx, runtime: BotRuntime | None) -> list[infranet.component.Job]
            # periodic work, which app.py schedules (runtime None: the bot is off)
        def setup(application: InfranetApplication, ctx) -> None
            # wiring on the Application (alerts it listens to), never scheduling
    and names its messages by id in the catalogs under `infranet/locale/` (ids
    `bot.<module>.*`; a command's description is `bot.cmd.<name>`). A module that
    does not exist yet is skipped. Handlers run in group 0 in module order; the
    generic `/cancel` and the unknown-command answer are added after all modules, so a
    conversation always sees its own `/cancel` first.

Writing a handler: one line gets the speaker, the session and the rules
    from infranet.bot.common import Turn, handler, cb, int_part, conversation, form, END

    @handler(access="member", chat="private")   # "anyone" | "member" | "admin"; "any" | "private"
    async def cmd_my(turn: Turn) -> None:
        turn.who.member / turn.actor / turn.lang / turn.session / turn.ctx (AppContext)
        turn.args (command arguments) / turn.text (message text) / turn.data (callback parts)
        turn.say("bot.events.saved", title=event.title)   # message key, params escaped
        turn.reply(html_text, buttons=[[("OK", cb("ev", event.id, "ok"))]])
        turn.edit(html_text, buttons)          # callbacks: edit the pressed message
        turn.notify_member(other, "bot.x.y", buttons, **params)   # in *their* language
        turn.toast("…")                        # the pop-up answer to a button press
    Also: `check_length(text, limit)` (ValidationFailed with length and limit),
    `turn.after_commit(async_fn)` for long work started once committed, and
    `@handler(db=False)` when the handler needs no session of ours: a form step that
    keeps its answers in user_data, or calls that open their own transactions (on
    SQLite they would wait for ours). `@handler(writes=False)` for handlers that only
    read (a read-only transaction, outside SQLite's write queue); where such a handler
    saves after all, `async with turn.writing():` around that last step. Both may
    take who speaks from a short-lived memory (`bot/people.py`) that forgets on any
    change of a member or organisation; writing handlers read the speaker afresh.
    `@handler` opens ONE transaction (`turn.session`) around the handler; replies,
    edits and notifications are queued and sent only after the commit, so nothing
    claims success that was rolled back. Callback queries are always answered.
    `access="member"` answers a non-member with one line on /join; `access="admin"`
    refuses non-admins. These are conveniences: the business function you call must
    check permissions itself (`actor.require_approved()`, `require_admin()`,
    `require_org(org_id)`), because a forged callback must change nothing.

Moderation
    Nothing to do in a form: `moderation.py` finds newly waiting events and notices by
    itself (a job every few seconds) and sends them to the admins with Publish /
    Reject. Just tell the poster that the item waits.

Business rules
    Never in a handler. Call `op(turn.session, turn.ctx, turn.actor, ...)` from the
    owning component (calendar, storage, newsletter). Raise/let through
    `InfranetError` (ValidationFailed, PermissionDenied, NotFound) or `UnknownDistrict`:
    `@handler` rolls back and answers with `exc.localized(lang)`; inside a
    conversation the state does not change, so the user simply answers the step again.

Text and HTML
    Every message is parse_mode=HTML. Templates in the i18n catalog may contain markup;
    `turn.t()`/`tr()` escape every parameter unless it is wrapped in `Html` (already
    safe markup you built with `esc()`). Build lists with `esc(user_text)` for each
    user-supplied piece. `send_html`/`turn.reply` split anything over 4096 visible
    characters on paragraph boundaries ("\\n\\n"), so never let a tag span a blank line.
    Check user input lengths and answer `bot.text_too_long` (length, limit).
    Dates: `infranet.i18n.format_date/format_span(..., lang)`.

Callback data
    Short, colon-separated, at most 64 bytes: `cb("ev", 123, "ok")` -> "ev:123:ok";
    `turn.data` -> ["ev", "123", "ok"]; `int_part(turn.data, 1)` -> 123 or None (forged).
    One prefix per module (ev, tr, ref, mod, join, mem, org, nl, lang, pg, src); register with
    `CallbackQueryHandler(fn, pattern=r"^ev:")`.

Conversations
    `conversation(ctx, "event", entry_points, states)` builds a persistent
    ConversationHandler (survives restarts via the bot_state table), with `/cancel` as a
    fallback and a timeout ([telegram] conversation_timeout_s) that tells the user.
    Keep the form in `form(turn, "event")` (= user_data["event"]); store JSON-friendly
    values only (str, int, float, bool, None, list, dict, plus date/datetime/time/Decimal,
    which the persistence tags); never ORM objects. Use `chat="private"` on entry points.
    Return the next state, `END` to finish (pop the form first), or None to stay.
    The form layer (`common.Form`) does the rest by itself: every question a step asks
    gets « Wstecz (back to the previous question, with the answers as they were) and
    Anuluj; starting a form while another is open asks whether to go back to the open
    one or abandon it; a form saved in a write transaction (`@handler()` ending with END,
    or `turn.writing()`) is recorded with what the user was told, so that the same form
    confirmed again after a crash answers "already saved".

Durable state, several instances
    user_data, chat_data and every conversation's state are read from the database when
    an update arrives (under a per-user lock shared by all instances) and written before
    any answer is sent (`application.InfranetApplication.process_update`). So keep form
    answers in user_data, never in module globals or handler attributes.

Private and group chats
    In groups the bot answers listings (/events, /trainings, /orgs, /help) and /check
    only. `chat="private"` handlers answer in a group with a button opening a private
    chat (deep link `/start <command>`, which starts a form's entry command there by
    itself); personal data never goes to a group.

Rate limit and errors
    A per-user limit of `[telegram] commands_per_minute` commands runs before every
    handler (`ratelimit.py`). Unexpected exceptions reach the error handler
    (`runtime.py`), which logs them with the update id and tells the user, without a
    traceback, to try again.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from telegram.ext import BaseHandler

from infranet.bot.common import Command
from infranet.component import Job
from infranet.context import AppContext

log = logging.getLogger(__name__)

# Order matters only for overlapping handlers; conversations come before plain commands.
MODULES = ("core", "membership", "moderation", "events", "trainings", "referrals", "support",
           "org_edit", "directory",
           "newsletter", "calendar_sources", "experts", "insight")


def load_modules() -> list[ModuleType]:
    found = []
    for name in MODULES:
        full = f"{__name__}.{name}"
        try:
            found.append(importlib.import_module(full))
        except ModuleNotFoundError as exc:
            if exc.name != full:
                raise
            log.debug("bot handler module %s does not exist yet", full)
    return found


def all_commands() -> list[Command]:
    seen: dict[str, Command] = {}
    for module in load_modules():
        for command in getattr(module, "COMMANDS", []):
            seen.setdefault(command.name, command)
    return list(seen.values())


def module_jobs(ctx: AppContext, runtime: Any | None) -> list[Job]:
    """The periodic jobs handler modules declare (`jobs(ctx, runtime)`); app.py schedules them."""
    found: list[Job] = []
    for module in load_modules():
        hook = getattr(module, "jobs", None)
        if hook is not None:
            found.extend(hook(ctx, runtime))
    return found


def setup_application(application: Any, ctx: AppContext) -> None:
    from infranet.bot.common import redelivery_guard

    # First of all (before the rate limit, group -10): an update Telegram offers again
    # after a crash, whose form was saved, is answered "already saved" and goes no further.
    application.add_handler(redelivery_guard(), group=-20)
    for module in load_modules():
        hook = getattr(module, "setup", None)
        if hook is not None:
            hook(application, ctx)


def all_handlers(ctx: AppContext) -> list[BaseHandler[Any, Any, Any]]:
    from telegram.ext import CallbackQueryHandler

    from infranet.bot.common import on_form_nav
    from infranet.bot.handlers import core

    # The form layer's « Wstecz / Anuluj / abandon-or-continue buttons, before any form.
    out: list[BaseHandler[Any, Any, Any]] = [CallbackQueryHandler(on_form_nav, pattern=r"^fm:")]
    for module in load_modules():
        out.extend(module.handlers(ctx))
    out.extend(core.last_handlers(ctx))
    return out
