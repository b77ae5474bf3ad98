"""The bot's small framework, as the handler modules import it (conventions in
`handlers/__init__.py`). It lives in modules of one job each, re-exported here:
`turns` (the @handler decorator, a Turn, transactions), `forms` and `form_history`
(persistent conversations with « Wstecz and Anuluj), `buttons` (callback data, keyboards),
`html_text` (escaping and splitting Telegram HTML), `sending`, `speakers` (who is
speaking), `commands` (/help and the menus) and `common_base` (shared constants).

The centre is the `@handler(...)` decorator: it opens one database transaction
for the update (a read-only one for handlers that only read, `writes=False`; none
for those that need no session, `db=False`), finds who is speaking (`Who`:
member, Actor, language; read in one query, or remembered for a while by
read-only handlers, see `people.py`), applies the access rule and the
private-chat rule, runs the handler with a `Turn`, and only after the
transaction has committed sends what the handler queued (replies, the edit of
the pressed message, then notifications to other people). A failed operation
therefore never announces success, and a refusal (`InfranetError`) is answered
in the user's language and leaves the database untouched.
"""

from __future__ import annotations

from infranet.bot.buttons import Buttons, cb, int_part, keyboard, parse_cb, rows_of  # noqa: F401
from infranet.bot.commands import Command, check_length  # noqa: F401
from infranet.bot.common_base import END, MAX_CALLBACK, MAX_MESSAGE, Access, Chats, State  # noqa: F401
from infranet.bot.form_history import NAV, NAV_PREFIX, SWITCH  # noqa: F401
from infranet.bot.forms import (  # noqa: F401
    Form,
    conversation,
    form,
    on_form_nav,
    open_form,
    redelivery_guard,
    scope_touch,
)
from infranet.bot.html_text import TAGS, Html, esc, split_html, tr, visible_length  # noqa: F401
from infranet.bot.sending import edit_html, send_html  # noqa: F401
from infranet.bot.speakers import Who, allows, identify, load_member  # noqa: F401
from infranet.bot.turns import (  # noqa: F401
    HandlerFn,
    Outgoing,
    Turn,
    handler,
    private_link,
    queue_answer,
    read_transaction,
    write_transaction,
)
