"""The bot's shared messages (Polish first, English). Handler modules register their
own keys next to their code; these are the ones every module relies on.

Messages are Telegram HTML templates: markup here is trusted, parameters are
escaped by `common.tr()` unless passed as `Html`.
"""

from __future__ import annotations


