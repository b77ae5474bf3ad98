"""Reading an .ics file as real calendars write it: bytes to content lines.

RFC 5545 §3.1 folds lines by octets, so a fold may split a UTF-8 character: lines are
unfolded on the bytes, before anything is decoded. Line ends may be CRLF (the standard)
or LF alone (many hand-written and PHP-made files); a UTF-8 byte-order mark is dropped.

A file that is not UTF-8 is most often a Polish Windows-1250 or ISO-8859-2 export:
detected from the bytes that differ between the two (the C1 range is text only in
Windows-1250; ą ś ź sit at 0xB1 0xB6 0xBC only in ISO-8859-2), converted, and said in
the report (`Read.note`). A file that is neither is refused naming the first line that
cannot be read.

`read_calendar` then checks the structure (every line NAME:value, BEGIN/END nesting): a
file broken there is not a calendar one can trust, and is refused naming the line. It
gives the unfolded text (what icalendar parses) and, for each top-level component, its
kind, first line and UID, so that every per-event report names the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from infranet.errors import ValidationFailed

_CONTENT_LINE = re.compile(r"^[A-Za-z0-9-]+(;[^:]*)?:")
_BOM = b"\xef\xbb\xbf"
# Bytes that decode as letters in Windows-1250 but are C1 controls in ISO-8859-2.
_C1 = re.compile(rb"[\x80-\x9f]")
# ą ś ź Ą Ś Ź in ISO-8859-2 (± ¶ ź ... in Windows-1250, rare in calendars).
_LATIN2_ONLY = re.compile(rb"[\xa1\xa6\xac\xb1\xb6\xbc]")


@dataclass(frozen=True)
class Part:
    """A top-level component of the calendar (VEVENT, VTODO, ...): where it starts."""

    kind: str
    line: int
    uid: str


@dataclass
class Read:
    text: str  # unfolded, CRLF line ends: what icalendar parses
    parts: list[Part] = field(default_factory=list)
    note: str | None = None  # how the file was read, when not as UTF-8


def broken(line: int, detail: str) -> ValidationFailed:
    return ValidationFailed(field=f"line {line}", detail=detail)


def _logical_lines(data: bytes) -> list[tuple[int, bytes]]:
    """(first physical line number, unfolded bytes) of every non-empty content line."""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    logical: list[tuple[int, bytes]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line[:1] in (b" ", b"\t") and logical:
            logical[-1] = (logical[-1][0], logical[-1][1] + line[1:])
        elif line.strip():
            logical.append((number, line))
    return logical


def _legacy_encoding(data: bytes) -> str:
    if _C1.search(data):
        return "cp1250"
    return "iso-8859-2" if _LATIN2_ONLY.search(data) else "cp1250"


def decode_lines(data: bytes | str) -> tuple[list[tuple[int, str]], str | None]:
    """The content lines as text, and a note when the file was not UTF-8."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    logical = _logical_lines(raw)
    try:
        return [(n, line.decode("utf-8")) for n, line in logical], None
    except UnicodeDecodeError:
        pass
    encoding = _legacy_encoding(raw)
    lines: list[tuple[int, str]] = []
    for number, line in logical:
        try:
            lines.append((number, line.decode("utf-8")))
        except UnicodeDecodeError:
            try:
                lines.append((number, line.decode(encoding)))
            except UnicodeDecodeError:
                raise broken(number, "the file is neither UTF-8 nor Windows-1250/ISO-8859-2 "
                                     "text; save it as UTF-8") from None
    label = {"cp1250": "Windows-1250", "iso-8859-2": "ISO-8859-2"}[encoding]
    return lines, f"the file is not UTF-8: read as {label}"


def decode_text(data: bytes) -> str | None:
    """A calendar served without a usable charset: UTF-8, else the Polish legacy encoding the
    bytes point to; None when neither reads (for a fetcher's body)."""
    for encoding in ("utf-8-sig", _legacy_encoding(data)):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def read_calendar(data: bytes | str) -> Read:
    """Decode, unfold and check the structure; raise ValidationFailed naming the first bad
    line of a file that is not a calendar."""
    lines, note = decode_lines(data)
    if not lines or lines[0][1].strip().upper() != "BEGIN:VCALENDAR":
        raise broken(lines[0][0] if lines else 1, "an iCalendar file must start with BEGIN:VCALENDAR")
    stack: list[tuple[str, int]] = []
    parts: list[Part] = []
    current: dict[str, object] | None = None
    for number, line in lines:
        if not _CONTENT_LINE.match(line):
            raise broken(number, f"{line[:60]!r} is not an iCalendar line (NAME:value)")
        name, _, value = line.partition(":")
        key = name.split(";")[0].upper()
        if key == "BEGIN":
            stack.append((value.strip().upper(), number))
            if len(stack) == 2:
                current = {"kind": value.strip().upper(), "line": number, "uid": ""}
        elif key == "END":
            if not stack or stack[-1][0] != value.strip().upper():
                expected = f"END:{stack[-1][0]}" if stack else "nothing"
                raise broken(number, f"END:{value.strip()} does not close anything open here "
                                     f"(expected {expected})")
            stack.pop()
            if len(stack) == 1 and current is not None:
                parts.append(Part(str(current["kind"]), int(str(current["line"])), str(current["uid"])))
                current = None
            if not stack and number != lines[-1][0]:
                raise broken(number + 1, "text after END:VCALENDAR")
        elif key == "UID" and len(stack) == 2 and current is not None:
            current["uid"] = value.strip()
    if stack:
        raise broken(stack[-1][1], f"BEGIN:{stack[-1][0]} is never closed (the file is cut short?)")
    return Read("\r\n".join(line for _n, line in lines) + "\r\n", parts, note)
