"""The message catalogs a translator owns: complete, used, and consistent with the code.

Code names messages by id; `infranet/locale/infranet.pot` lists them and each language's
.po translates them. These tests fail on an id used in code that no catalog has, on a
catalog message no code uses, on a translation whose parameters differ from the other
language's, and (through `i18n.strict`, on in every test) on a message rendered without
one of its parameters.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from string import Formatter

from babel.messages.pofile import read_po

from infranet import i18n

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "infranet" / "locale"
ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)+$")
TEMPLATE_CALL = re.compile(r"""\b_\(\s*["']([^"']+)["']""")


def _catalog(path: Path) -> dict[str, tuple[str, ...]]:
    with path.open("rb") as po:
        catalog = read_po(po)
    found = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        found[key] = tuple(forms)
    return found


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


# Calls that take a message id, and the position of the id among their arguments.
MESSAGE_CALLS = {"t": (0, 1), "tr": (1,), "say": (0,), "notify_member": (1,), "_words": (0,),
                 "ValidationFailed": (0,), "NotFound": (0,), "PermissionDenied": (0,)}


def _ids_in_code() -> tuple[set[str], set[str], set[str]]:
    """From infranet/: ids passed to the calls that render messages; every string constant
    shaped like an id (a message may be chosen in one place and rendered in another); and
    the constant heads of ids built at run time (f"org.service.{code}", "bot.events.f." + name)."""
    called: set[str] = set()
    literals: set[str] = set()
    prefixes: set[str] = set()
    head = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)*\.$")
    for path in (ROOT / "infranet").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ID.match(node.value):
                literals.add(node.value)
            elif isinstance(node, ast.JoinedStr) and node.values:
                first = node.values[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str) \
                        and head.match(first.value):
                    prefixes.add(first.value)
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) \
                    and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str) \
                    and head.match(node.left.value):
                prefixes.add(node.left.value)
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                for index in MESSAGE_CALLS.get(name, ()):
                    if index < len(node.args):
                        arg = node.args[index]
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                                and ID.match(arg.value):
                            called.add(arg.value)
    for path in (ROOT / "infranet").rglob("*.html"):  # templates call `_("id", ...)`
        for key in TEMPLATE_CALL.findall(path.read_text()):
            if ID.match(key):
                called.add(key)
                literals.add(key)
            elif head.match(key):  # _("site.x.kind." ~ code)
                prefixes.add(key)
    return called, literals, prefixes


def test_every_language_has_every_message_of_the_template() -> None:
    template = set(_catalog(LOCALE / "infranet.pot"))
    for lang in i18n.LANGUAGES:
        translated = _catalog(LOCALE / lang / "LC_MESSAGES" / "infranet.po")
        assert set(translated) == template, lang
        empty = sorted(key for key, forms in translated.items() if not all(forms))
        assert not empty, f"{lang}: untranslated {empty}"


def test_translations_take_the_same_parameters_in_every_language_and_form() -> None:
    catalogs = {lang: _catalog(LOCALE / lang / "LC_MESSAGES" / "infranet.po") for lang in i18n.LANGUAGES}
    reference = catalogs[i18n.DEFAULT_LANGUAGE]
    for key, forms in reference.items():
        expected = _fields(forms[-1])
        for lang, catalog in catalogs.items():
            for form in catalog[key]:
                assert _fields(form) == expected, f"{lang} {key}: {form!r}"


def test_every_message_id_in_the_code_is_in_the_catalog() -> None:
    known = set(_catalog(LOCALE / "infranet.pot"))
    called, _, _ = _ids_in_code()
    missing = sorted(called - known)
    assert not missing, f"used in code, missing from the catalogs: {missing}"


def test_every_catalog_message_is_used_by_the_code() -> None:
    _, literals, prefixes = _ids_in_code()
    unused = sorted(key for key in _catalog(LOCALE / "infranet.pot")
                    if key not in literals and not any(key.startswith(p) for p in prefixes))
    assert not unused, f"in the catalogs, used by no code: {unused}"


def test_polish_counts_take_the_right_form() -> None:
    assert "1 znak," in i18n.t("pl", "error.too_long", field="title", length=1, limit=0)
    assert "22 znaki," in i18n.t("pl", "error.too_long", field="title", length=22, limit=0)
    assert "25 znaków," in i18n.t("pl", "error.too_long", field="title", length=25, limit=0)
    assert "112 znaków," in i18n.t("pl", "error.too_long", field="title", length=112, limit=0)
    assert "valid for 1 day)" in i18n.t("en", "newsletter.expired", days=1)
    assert "ważny 1 dzień)" in i18n.t("pl", "newsletter.expired", days=1)


def test_a_misspelled_parameter_fails_instead_of_rendering_a_gap() -> None:
    import pytest

    with pytest.raises(KeyError, match="needs"):
        i18n.t("pl", "error.too_long", field="title", lenght=3, limit=2)
