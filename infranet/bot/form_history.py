"""A form's step history: what « Wstecz puts back, and the buttons each question gets.

`forms.Form` keeps, in user_data[NAV], the questions asked so far with the answers as
they were before each; these helpers turn a step's buttons into JSON-friendly rows for
that history, add « Wstecz / Anuluj to them, and note and undo only what a step changed.
"""

from __future__ import annotations

import html
from typing import Any

from telegram import InlineKeyboardMarkup

from infranet.bot.buttons import Buttons, cb
from infranet.bot.html_text import TAGS
from infranet.bot.turns import Outgoing, Turn
from infranet.i18n import t

NAV = "_nav"        # user_data: the open form's id, history of steps and current question
SWITCH = "_switch"  # user_data: a second form asked for while one is open
NAV_PREFIX = "fm"


def step_rows(buttons: Buttons) -> list[list[list[str]]]:
    """Buttons as JSON-friendly rows of [label, data or URL] (kept in a form's history)."""
    if buttons is None:
        return []
    if isinstance(buttons, InlineKeyboardMarkup):
        return [[[b.text, str(b.callback_data or b.url or "")] for b in row]
                for row in buttons.inline_keyboard]
    return [[[label, value] for label, value in row] for row in buttons if row]


def with_nav(lang: str, nav: dict[str, Any], buttons: list[list[list[str]]]) -> Buttons:
    """The step's buttons with « Wstecz (not on the first question) next to Anuluj: the
    step's own Anuluj where it has one, else the form layer's."""
    rows: list[list[tuple[str, str]]] = [[(label, value) for label, value in r] for r in buttons]
    depth = len(nav.get("steps", []))
    back = [(t(lang, "bot.prev"), cb(NAV_PREFIX, "b", nav["id"], depth))] if depth else []
    cancel = t(lang, "bot.cancel")
    for row in rows:
        if any(label == cancel for label, _value in row):
            at = next(i for i, (label, _value) in enumerate(row) if label == cancel)
            row[at:at] = back
            return rows
    rows.append([*back, (cancel, cb(NAV_PREFIX, "x", nav["id"], depth))])
    return rows


def undo_of(before: Any, after: Any) -> dict[str, Any]:
    """What « Wstecz needs to put a step's answers back: only the answers the step changed
    (a whole form per step would make every later write of the state grow)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return {"whole": before}
    return {"set": {k: v for k, v in before.items() if after.get(k, v) != v or k not in after},
            "unset": [k for k in after if k not in before]}


def apply_undo(user_data: dict[Any, Any], name: str, undo: dict[str, Any]) -> None:
    if "whole" in undo or "set" not in undo:
        whole = undo.get("whole")
        if whole is None:
            user_data.pop(name, None)
        else:
            user_data[name] = whole
        return
    answers = user_data.setdefault(name, {})
    for key in undo.get("unset", []):
        answers.pop(key, None)
    answers.update(undo["set"])


def on_screen(turn: Turn, item: Outgoing) -> bool:
    """Whether the edit `item` would leave the pressed message as it is (Telegram refuses it)."""
    message = turn.update.callback_query.message if turn.update.callback_query else None
    if message is None:
        return False
    markup = getattr(message, "reply_markup", None)
    old = [[(b.text, str(b.callback_data or b.url or "")) for b in row]
           for row in (markup.inline_keyboard if markup else [])]
    new = [[(label, value) for label, value in row] for row in step_rows(item.buttons)]
    visible = html.unescape(TAGS.sub("", str(item.text)))
    return getattr(message, "text", None) == visible and old == new
