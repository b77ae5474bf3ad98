"""Errors that reach a user: each carries a message key and its parameters,
so the bot, the web pages and the CLI can word it in the user's language."""

from __future__ import annotations

from typing import Any


class InfranetError(Exception):
    """Base of every error meant to be shown to a user (never with a traceback)."""

    key = "error.generic"

    def __init__(self, key: str | None = None, /, **params: Any) -> None:
        self.key = key or self.key
        self.params = params
        super().__init__(self.localized("en"))

    def localized(self, lang: str) -> str:
        """The message in `lang`; a `field` parameter is shown by its name in that language."""
        from infranet.i18n import known, t

        params = dict(self.params)
        field = params.get("field")
        if isinstance(field, str) and known(f"field.{field}"):
            params["field"] = t(lang, f"field.{field}")
        return t(lang, self.key, **params)


class ValidationFailed(InfranetError):
    """The input was wrong; the message names the field and how to fix it."""

    key = "error.invalid"


class PermissionDenied(InfranetError):
    key = "error.forbidden"


class NotFound(InfranetError):
    key = "error.not_found"
