"""The /expert_add form in the chat: name → topics → districts → languages → contact →
the consent text, with "The person agreed" / Cancel, each answer checked as it is typed
(`network.expert_fields`); and the expert's card, which the form's summary and the search
results (`experts.py`) both show.

The consent buttons carry the draft they were shown with (`xp:ok|no:<draft>`): after
« Wstecz and a changed answer the summary is shown again with a new draft, and the older
summary's buttons say they are outdated and save nothing; once saved or cancelled, the
form is gone and its buttons answer as stale (`core`).

The "saved" message names the row's number only: what the user was told is kept a few days
as the form's receipt, and a forgotten person's name must not stay in it.

Apart from `experts.py` (search, edit and delete under an expert), where the conversation
is registered, because the form is a flow of its own; the district and language buttons
it asks with are reused by the edit there.
"""

from __future__ import annotations

import secrets
from typing import Any

from infranet.bot.common import END, Html, Turn, cb, check_length, esc, form, handler
from infranet.i18n import t
from infranet.network.expert_fields import (
    TOPICS_MAX,
    clean_districts,
    clean_languages,
    clean_topics,
    language_name,
    parse_contact,
)
from infranet.network.experts import CONSENT_MESSAGE, CONSENT_VERSION, NAME_MAX, ExpertInput, add_expert
from infranet.validation import clean_text

ADD_FORM = "expert_add"
NAME, TOPICS, DISTRICTS, LANGUAGES, CONTACT, CONSENT = (
    "expert.name", "expert.topics", "expert.districts", "expert.languages", "expert.contact",
    "expert.consent")
LANGUAGE_CHOICES = (("pl",), ("pl", "en"), ("pl", "uk"))


# --- showing an expert ------------------------------------------------------------------


def card(turn: Turn, lang: str, name: str, topics: list[str], districts: list[str],
         languages: list[str], email: str | None, phone: str | None, note: str | None = None,
         number: int | None = None) -> Html:
    """One expert as Telegram HTML, every stored piece escaped, without blank lines (messages
    are split between experts, on blank lines)."""
    head = f"<b>{esc(name)}</b>" + (f" (#{number})" if number is not None else "")
    lines = [head,
             f"{esc(t(lang, 'field.topics'))}: {esc(', '.join(topics))}",
             f"{esc(t(lang, 'field.districts'))}: {esc(', '.join(districts))}",
             f"{esc(t(lang, 'field.languages'))}: "
             + esc(", ".join(language_name(c, lang) for c in languages)),
             f"{esc(t(lang, 'field.contact'))}: " + esc(" · ".join(c for c in (email, phone) if c))]
    if note:
        lines.append(f"{esc(t(lang, 'field.note'))}: {esc(' '.join(note.split()))}")
    return Html("\n".join(lines))


# --- /expert_add ---------------------------------------------------------------------------


def _draft(turn: Turn) -> dict[str, Any]:
    return form(turn, ADD_FORM)


@handler(access="member", chat="private", db=False)
async def cmd_expert_add(turn: Turn) -> object:
    turn.user_data[ADD_FORM] = {}
    turn.say("bot.experts.ask_name", limit=NAME_MAX)
    return NAME


@handler(access="member", chat="private", db=False)
async def on_name(turn: Turn) -> object:
    _draft(turn)["name"] = clean_text(check_length(turn.text, NAME_MAX), "person_name", NAME_MAX,
                                      required=True)
    turn.say("bot.experts.ask_topics", limit=TOPICS_MAX)
    return TOPICS


@handler(access="member", chat="private", db=False)
async def on_topics(turn: Turn) -> object:
    _draft(turn)["topics"] = clean_topics(check_length(turn.text, 1000))
    turn.say("bot.experts.ask_districts", district_buttons(turn))
    return DISTRICTS


def district_buttons(turn: Turn) -> list[list[tuple[str, str]]]:
    """The region and its districts as buttons; the form and the edit screen share them."""
    region = turn.ctx.region
    return [[(turn.t("bot.experts.whole_region"), cb("xp", "d", region.root.slug))],
            *([(d.name, cb("xp", "d", d.slug))] for d in region.subregions)]


def language_buttons(turn: Turn) -> list[list[tuple[str, str]]]:
    """The language choices as buttons; the form and the edit screen share them."""
    return [[(", ".join(language_name(c, turn.lang) for c in codes), cb("xp", "l", "-".join(codes)))]
            for codes in LANGUAGE_CHOICES]


@handler(access="member", chat="private", db=False)
async def on_districts(turn: Turn) -> object:
    if turn.update.callback_query:
        slug = turn.data[2] if len(turn.data) > 2 else ""
        if slug not in turn.ctx.region.by_slug:
            turn.toast(turn.t("bot.button_expired"))
            return None
        districts = clean_districts(turn.ctx, [slug])
    else:
        districts = clean_districts(turn.ctx, check_length(turn.text, 1000))
    _draft(turn)["districts"] = [d.slug for d in districts]
    buttons = language_buttons(turn)
    text = turn.t("bot.experts.ask_languages")
    if turn.update.callback_query:
        turn.edit(Html(f"✓ {esc(', '.join(d.name for d in districts))}\n\n{text}"), buttons)
    else:
        turn.reply(text, buttons)
    return LANGUAGES


@handler(access="member", chat="private", db=False)
async def on_languages(turn: Turn) -> object:
    if turn.update.callback_query:
        choice = turn.data[2] if len(turn.data) > 2 else ""
        if tuple(choice.split("-")) not in LANGUAGE_CHOICES:
            turn.toast(turn.t("bot.button_expired"))
            return None
        codes = clean_languages(choice.split("-"))
        turn.edit(Html(f"✓ {esc(', '.join(language_name(c, turn.lang) for c in codes))}\n\n"
                       f"{turn.t('bot.experts.ask_contact')}"))
    else:
        codes = clean_languages(check_length(turn.text, 300))
        turn.say("bot.experts.ask_contact")
    _draft(turn)["languages"] = codes
    return CONTACT


@handler(access="member", chat="private", db=False)
async def on_contact(turn: Turn) -> object:
    data = _draft(turn)
    email, phone = parse_contact(check_length(turn.text, 300))
    data.update(email=email, phone=phone)
    if not all(k in data for k in ("name", "topics", "districts", "languages")):
        turn.say("bot.button_expired")
        return END
    # A new draft each time the summary is shown: only its own buttons act on it.
    data.update(draft=secrets.token_hex(4), version=CONSENT_VERSION)
    names = [turn.ctx.region.by_slug[s].name for s in data["districts"] if s in turn.ctx.region.by_slug]
    summary = card(turn, turn.lang, data["name"], data["topics"], names, data["languages"],
                   email, phone)
    turn.reply(turn.t("bot.experts.summary", card=summary,
                      consent=t(turn.lang, CONSENT_MESSAGE, version=CONSENT_VERSION)),
               [[(turn.t("bot.experts.agreed_button"), cb("xp", "ok", data["draft"]))],
                [(turn.t("bot.cancel"), cb("xp", "no", data["draft"]))]])
    return CONSENT


@handler(access="member", chat="private")
async def on_consent(turn: Turn) -> object:
    """The consent buttons act on exactly the draft they were shown with."""
    data = _draft(turn)
    choice = turn.data[1] if len(turn.data) > 1 else ""
    draft = turn.data[2] if len(turn.data) > 2 else ""
    if not draft or draft != data.get("draft"):
        turn.toast(turn.t("bot.experts.draft_outdated"))
        return None
    if choice == "no":
        turn.user_data.pop(ADD_FORM, None)
        turn.edit(turn.t("bot.cancelled"))
        return END
    if choice != "ok":
        turn.toast(turn.t("bot.button_expired"))
        return None
    row = await add_expert(turn.session, turn.ctx, turn.actor, ExpertInput(
        name=data["name"], topics=data["topics"], districts=data["districts"],
        languages=data["languages"], email=data.get("email"), phone=data.get("phone"),
        consent=True, consent_version=data.get("version")))
    turn.user_data.pop(ADD_FORM, None)
    turn.edit(turn.t("bot.experts.saved", id=row.id, version=row.consent_text_version))
    return END
