"""`infranet newsletter ...`: the newsletter's sub-commands."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Added by the newsletter work (issue 5)."""
