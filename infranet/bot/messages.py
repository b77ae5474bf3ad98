"""The bot's shared messages (Polish first, English). Handler modules register their
own keys next to their code; these are the ones every module relies on.

Messages are Telegram HTML templates: markup here is trusted, parameters are
escaped by `common.tr()` unless passed as `Html`.
"""

from __future__ import annotations

from infranet.i18n import register

register({
    # --- rules applied by @handler ---------------------------------------------------
    "bot.need_member": {
        "pl": "Z tej komendy mogą korzystać tylko zatwierdzeni członkowie sieci. Dołącz przez /join.",
        "en": "Only approved members of the network can use this command. Join with /join.",
    },
    "bot.need_admin": {
        "pl": "Z tej komendy mogą korzystać tylko administratorzy sieci.",
        "en": "Only the network's admins can use this command.",
    },
    "bot.private_only": {
        "pl": "To załatwimy w prywatnej rozmowie ze mną.",
        "en": "Let's do this in a private chat with me.",
    },
    "bot.open_private": {"pl": "Otwórz rozmowę", "en": "Open the chat"},
    "bot.unknown_district": {
        "pl": "Nie znam powiatu „{query}”. Czy chodzi o: {hint}?",
        "en": "I don't know the district \"{query}\". Did you mean: {hint}?",
    },
    "bot.district.which": {
        "pl": "„{query}” to miasto na prawach powiatu albo powiat wokół niego. Które z nich?",
        "en": "“{query}” is the city (a powiat of its own) or the powiat around it. Which one?",
    },
    "bot.district.which_plain": {
        "pl": "„{query}” to więcej niż jeden powiat: {options}. Napisz, który, np. „m. …” dla miasta "
              "albo „powiat …”.",
        "en": "“{query}” names more than one district: {options}. Write which one, e.g. “m. …” for "
              "the city or “powiat …”.",
    },
    "bot.district.city": {"pl": "{name} — miasto (powiat grodzki)",
                          "en": "{name} — the city (a powiat of its own)"},
    "bot.district.powiat": {"pl": "powiat {name}", "en": "powiat {name} (district)"},
    "bot.district.did_you_mean": {"pl": "Nie znam powiatu „{query}”. Czy chodzi o:",
                                  "en": "I don't know the district “{query}”. Did you mean:"},
    "bot.district.outside": {
        "pl": "„{query}” leży poza regionem ({region}). Wybierz obszar w regionie:",
        "en": "“{query}” is outside the region ({region}). Choose an area in the region:",
    },
    "bot.district.outside_plain": {
        "pl": "„{query}” leży poza regionem. Podaj powiat albo podregion z regionu.",
        "en": "“{query}” is outside the region. Give a district or a subregion "
              "of the region.",
    },
    "bot.cancelled": {"pl": "Anulowano. Nic nie zostało zapisane.",
                      "en": "Cancelled. Nothing was saved."},
    "bot.nothing_to_cancel": {"pl": "Nie ma nic do anulowania.", "en": "There is nothing to cancel."},
    "bot.timed_out": {
        "pl": "Rozmowa wygasła z powodu braku odpowiedzi; nic nie zostało zapisane. "
              "Zacznij od nowa, kiedy zechcesz.",
        "en": "The conversation timed out without an answer; nothing was saved. "
              "Start again whenever you like.",
    },
    "bot.not_understood": {
        "pl": "Nie wiem, do czego odnosi się ta wiadomość. Zacznij od komendy, np. /help.",
        "en": "I don't know what this message refers to. Start with a command, e.g. /help."},
    "bot.unknown_command": {"pl": "Nie znam tej komendy. Zobacz /help.",
                            "en": "I don't know that command. See /help."},
    "bot.slow_down": {
        "pl": "Za dużo komend naraz: najwyżej {limit} na minutę. Spróbuj ponownie za chwilę.",
        "en": "Too many commands at once: at most {limit} a minute. Please try again shortly.",
    },
    "bot.error": {
        "pl": "Przepraszam, coś poszło nie tak po mojej stronie (zgłoszenie {ref}). "
              "Spróbuj ponownie za chwilę.",
        "en": "Sorry, something went wrong on my side (reference {ref}). Please try again shortly.",
    },
    "bot.text_too_long": {
        "pl": "Za długi tekst: {length} znaków, limit to {limit}. Skróć go i wyślij ponownie.",
        "en": "The text is too long: {length} characters, the limit is {limit}. "
              "Shorten it and send it again.",
    },
    "bot.text_expected": {"pl": "Napisz odpowiedź tekstem albo /cancel, aby przerwać.",
                          "en": "Please answer with text, or /cancel to stop."},
    "bot.button_expired": {"pl": "Ten przycisk jest już nieaktualny.",
                           "en": "This button is no longer valid."},
    "bot.skip": {"pl": "Pomiń", "en": "Skip"},
    "bot.yes": {"pl": "Tak", "en": "Yes"},
    "bot.no": {"pl": "Nie", "en": "No"},
    "bot.confirm": {"pl": "Potwierdź", "en": "Confirm"},
    "bot.cancel": {"pl": "Anuluj", "en": "Cancel"},
    "bot.next": {"pl": "Dalej »", "en": "Next »"},
    "bot.prev": {"pl": "« Wstecz", "en": "« Back"},
    "bot.none_found": {"pl": "Nic nie znaleziono.", "en": "Nothing found."},
    # --- /start, /help, /lang -------------------------------------------------------
    "bot.start.anyone": {
        "pl": "Cześć! Jestem botem sieci organizacji infrastrukturalnych ({region}).\n\n"
              "Pomagam uzgadniać terminy wydarzeń we wspólnym kalendarzu, ogłaszać nabory na "
              "szkolenia, przekazywać sobie klientów i szukać organizacji wsparcia.\n\n"
              "Możesz już przeglądać: /events, /trainings, /orgs, /check.\n"
              "Aby publikować, dołącz przez /join. Wszystkie komendy: /help.",
        "en": "Hi! I am the bot of the network of NGO-support organisations ({region}).\n\n"
              "I help coordinate event dates in the shared calendar, announce training "
              "recruitments, refer clients to each other and find support organisations.\n\n"
              "You can browse now: /events, /trainings, /orgs, /check.\n"
              "To post, join with /join. All commands: /help.",
    },
    "bot.start.pending": {
        "pl": "Twoja prośba o dołączenie czeka na decyzję administratora. Dam znać.",
        "en": "Your request to join is waiting for an admin's decision. I will let you know.",
    },
    "bot.start.member": {
        "pl": "Witaj, {name} ({org})!\n\nDodaj wydarzenie: /event, nabór: /training, "
              "skieruj klienta: /refer. Wszystkie komendy: /help.",
        "en": "Welcome, {name} ({org})!\n\nAdd an event: /event, a training: /training, "
              "refer a client: /refer. All commands: /help.",
    },
    "bot.start.admin": {
        "pl": "Jako administrator: prośby o dołączenie /members, oczekujące ogłoszenia /pending, "
              "newsletter /newsletter_preview.",
        "en": "As an admin: join requests /members, waiting postings /pending, "
              "newsletter /newsletter_preview."},
    "bot.start.next": {
        "pl": "Kalendarz sieci: {calendar}\nSubskrypcja w Google, Outlooku lub Thunderbirdzie: "
              "{feed}\n\nCo dalej?",
        "en": "The network's calendar: {calendar}\nSubscribe in Google, Outlook or Thunderbird: "
              "{feed}\n\nWhat next?",
    },
    "bot.start.b.join": {"pl": "Dołącz do sieci", "en": "Join the network"},
    "bot.start.b.event": {"pl": "Dodaj wydarzenie", "en": "Add an event"},
    "bot.start.b.events": {"pl": "Najbliższe wydarzenia", "en": "Upcoming events"},
    "bot.start.b.check": {"pl": "Sprawdź termin", "en": "Check a date"},
    "bot.start.b.subscribe": {"pl": "Newsletter e-mailem", "en": "Newsletter by e-mail"},
    "bot.start.subscribe": {
        "pl": "Newsletter sieci przychodzi e-mailem. Zapisz się tutaj: /subscribe adres@example.org "
              "albo na stronie {page}.",
        "en": "The network's newsletter comes by e-mail. Subscribe here: /subscribe address@example.org "
              "or on the page {page}.",
    },
    "bot.start.deep_link": {"pl": "Wyślij /{command}, aby zacząć.",
                            "en": "Send /{command} to begin."},
    "bot.help.title": {"pl": "<b>Komendy dostępne dla Ciebie</b>", "en": "<b>Commands you can use</b>"},
    "bot.help.join_hint": {"pl": "Więcej komend po dołączeniu do sieci: /join.",
                           "en": "More commands once you join the network: /join."},
    "bot.lang.choose": {"pl": "Wybierz język:", "en": "Choose a language:"},
    "bot.lang.set": {"pl": "Język ustawiony: polski.", "en": "Language set: English."},
    "bot.cmd.start": {"pl": "co potrafi ten bot", "en": "what this bot does"},
    "bot.cmd.help": {"pl": "lista komend", "en": "list of commands"},
    "bot.cmd.lang": {"pl": "język: polski / English", "en": "language: polski / English"},
    "bot.cmd.cancel": {"pl": "przerwij bieżącą rozmowę", "en": "stop the current conversation"},
})
