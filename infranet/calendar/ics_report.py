"""What an import did, for the CLI, the logs and a followed calendar's members.

Kept apart from the importer so that its callers (`source_sync`, `source_refresh`, the bot's
/calendar_source) read the shape without importing the import itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ConflictNote:
    """A date of an imported event that clashes with another organisation's event."""

    title: str
    starts_at: datetime
    other_title: str
    other_organisation: str
    other_organisation_id: int | None = None


@dataclass(frozen=True)
class Skipped:
    """An event of the file left out, and why (line, UID, reason in English)."""

    line: int
    uid: str
    reason: str


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    # New conflicts the import found (told to the members after the commit).
    conflicts: list[ConflictNote] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)  # the events the file names, as stored
    note: str | None = None  # how the file was read, when not plainly (its encoding)

    def summary(self) -> str:
        """One English line for logs and the CLI."""
        return (f"{self.added} added, {self.updated} updated, {self.cancelled} cancelled, "
                f"{self.unchanged} unchanged, {len(self.skipped)} skipped")

    def details(self) -> list[str]:
        """The report's other lines: the note, each skipped event, each conflict."""
        lines = [f"note: {self.note}"] if self.note else []
        lines += [f"skipped: line {s.line}, UID {s.uid or '-'}: {s.reason}" for s in self.skipped]
        lines += [f"conflict: {c.title!r} at {c.starts_at:%Y-%m-%d %H:%M} UTC with {c.other_title!r} "
                  f"({c.other_organisation})" for c in self.conflicts]
        return lines


ImportResult = SyncReport  # the name the importer's callers used before
