"""Who a client of the network is: the one set of rules for naming a supported
organisation, shared by referrals (`referrals.py`) and the register of support given
(`support.py`), so that both recognise the same client the same way.

An organisation is known by its KRS (10 digits, zero-padded) or its NIP (10 digits with
a check digit), an informal group by its name; names are compared by their fold
(`region.fold`: case, diacritics and punctuation ignored), so "FUNDACJA  KLIENT!" is
"Fundacja Klient".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from infranet.errors import ValidationFailed
from infranet.region import fold

NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)


def normalise_krs(value: str) -> str:
    digits = re.sub(r"[\s-]", "", value.strip())
    if not re.fullmatch(r"[0-9]{10}", digits):
        raise ValidationFailed("referrals.bad_krs", value=value.strip())
    return digits


def normalise_nip(value: str) -> str:
    """10 digits whose weighted sum mod 11 is the last digit (10 is never valid)."""
    raw = value.strip()
    digits = re.sub(r"[\s-]", "", raw.upper().removeprefix("PL"))
    if not re.fullmatch(r"[0-9]{10}", digits):
        raise ValidationFailed("referrals.nip_digits", value=raw)
    check = sum(int(d) * w for d, w in zip(digits, NIP_WEIGHTS, strict=False)) % 11
    if check == 10 or check != int(digits[9]):
        raise ValidationFailed("referrals.nip_checksum", value=raw)
    return digits


def parse_identifier(text: str) -> tuple[str | None, str | None]:
    """"KRS 0000123456", "NIP 123-456-32-18" or bare digits -> (krs, nip).

    Bare digits starting with 0 are a KRS (KRS numbers are zero-padded; no NIP
    starts with 0), otherwise a NIP."""
    cleaned = text.strip()
    lowered = cleaned.lower()
    if lowered.startswith("krs"):
        return normalise_krs(cleaned[3:].lstrip(" :")), None
    if lowered.startswith("nip"):
        return None, normalise_nip(cleaned[3:].lstrip(" :"))
    digits = re.sub(r"[\s-]", "", cleaned)
    if digits.startswith("0"):
        return normalise_krs(cleaned), None
    return None, normalise_nip(cleaned)


def looks_like_identifier(text: str) -> bool:
    """Whether a person typed a number (KRS, NIP, PESEL...) rather than a name: mostly
    digits, or "KRS ..."/"NIP ..."."""
    cleaned = text.strip()
    lowered = cleaned.lower()
    if lowered.startswith(("krs", "nip", "pesel")) and any(c.isdigit() for c in cleaned):
        return True
    body = re.sub(r"[\s\-.]", "", lowered.removeprefix("pl"))
    return bool(body) and body.isascii() and body.isdigit()


def is_pesel(text: str) -> bool:
    """An 11-digit number or one written "PESEL ...": a private person's number, which
    the register never holds."""
    cleaned = text.strip().lower()
    digits = re.sub(r"[\s\-.]", "", cleaned.removeprefix("pesel").lstrip(" :"))
    return cleaned.startswith("pesel") or (digits.isascii() and digits.isdigit() and len(digits) == 11)


def client_key(name: str) -> str:
    return fold(name)[:200]


@dataclass(frozen=True)
class Duplicate:
    """Another organisation that referred or took on (or supported) the same client
    recently."""

    organisation: str
    at: datetime
