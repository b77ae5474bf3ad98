"""`infranet events ...`: the calendar's sub-commands."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Added by the calendar work (issue 3)."""
