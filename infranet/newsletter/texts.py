"""The newsletter's words in Polish and English: messages, e-mail and page texts.

Templates call `_("key")`; a branded template directory can reuse these keys
or write its own text.
"""

from __future__ import annotations

from infranet.i18n import register

# Bumped whenever the consent wording below changes; stored with each subscriber.
CONSENT_VERSION = "2026-11-1"

register({
    # errors
    "newsletter.bad_link": {
        "pl": "Ten link jest nieprawidłowy lub już nieważny. Zapisz się ponownie albo użyj "
              "linku z najnowszego wydania.",
        "en": "This link is invalid or no longer valid. Subscribe again or use the link in "
              "the latest issue."},
    "newsletter.expired": {
        "pl": "Link potwierdzający wygasł (ważny {days} dni). Zapisz się ponownie.",
        "en": "The confirmation link has expired (valid for {days} days). Please subscribe again."},
    "newsletter.unknown_category": {
        "pl": "nieznana kategoria „{value}”; wybierz spośród: {choices}",
        "en": "unknown category “{value}”; choose from: {choices}"},
    "newsletter.unknown_language": {
        "pl": "język „{value}” nie jest obsługiwany; wybierz pl albo en",
        "en": "language “{value}” is not supported; choose pl or en"},
    "newsletter.note_empty": {"pl": "Notka nie może być pusta.", "en": "The note must not be empty."},
    "newsletter.note_too_long": {
        "pl": "Notka ma {length} znaków; limit to {limit}.",
        "en": "The note is {length} characters long; the limit is {limit}."},
    "newsletter.no_subscriber": {"pl": "Brak subskrybenta {email}.", "en": "No subscriber {email}."},
    "newsletter.no_issue": {"pl": "Brak wydania #{id}.", "en": "No issue #{id}."},
    "newsletter.consent_required": {
        "pl": "Zaznacz zgodę na otrzymywanie newslettera.",
        "en": "Please tick the consent to receive the newsletter."},
    "newsletter.check_failed": {
        "pl": "Wydanie nie zostanie wysłane: {problems}",
        "en": "The issue will not be sent: {problems}"},
    "newsletter.alert_smtp_down": {
        "pl": "Newsletter: serwer SMTP nie odpowiada ({error}). Wydanie czeka i zostanie wysłane, "
              "gdy serwer wróci.",
        "en": "Newsletter: the SMTP server does not answer ({error}). The issue waits and is sent "
              "when the server is back."},
    "newsletter.alert_unknown": {
        "pl": "Newsletter: {count} wiadomości wydania #{issue} przerwano w trakcie wysyłki; nie "
              "wiadomo, czy dotarły. Wyślij je ponownie („resend unknown”) albo zostaw.",
        "en": "Newsletter: {count} messages of issue #{issue} were interrupted while sending; it "
              "is unknown whether they arrived. Resend them (“resend unknown”) or leave them."},
    # consent
    "newsletter.consent_text": {
        "pl": "Chcę otrzymywać newsletter sieci e-mailem. Mogę w każdej chwili zrezygnować "
              "linkiem w każdej wiadomości; mój adres służy tylko do wysyłki newslettera.",
        "en": "I want to receive the network's newsletter by e-mail. I can unsubscribe at any "
              "time with the link in every message; my address is used only to send it."},
    # e-mails
    "newsletter.confirm_subject": {
        "pl": "Potwierdź zapis: {title}", "en": "Please confirm your subscription: {title}"},
    "newsletter.confirm_intro": {
        "pl": "Ktoś (zapewne Ty) zapisał ten adres do newslettera „{title}”. Aby potwierdzić, "
              "kliknij link poniżej. Link jest ważny {days} dni.",
        "en": "Someone (probably you) subscribed this address to “{title}”. To confirm, "
              "open the link below. It is valid for {days} days."},
    "newsletter.confirm_button": {"pl": "Potwierdzam zapis", "en": "Confirm my subscription"},
    "newsletter.confirm_ignore": {
        "pl": "Jeśli to nie Ty, zignoruj tę wiadomość: bez potwierdzenia nic nie wyślemy.",
        "en": "If this was not you, ignore this message: nothing is sent without confirmation."},
    "newsletter.subject": {"pl": "{title}: {period}", "en": "{title}: {period}"},
    "newsletter.hello": {
        "pl": "Co słychać w sieci: wydarzenia, szkolenia i nowi członkowie ({period}).",
        "en": "News from the network: events, trainings and new members ({period})."},
    "newsletter.note_heading": {"pl": "Od redakcji", "en": "Editorial note"},
    "newsletter.events_heading": {"pl": "Nadchodzące wydarzenia", "en": "Upcoming events"},
    "newsletter.trainings_heading": {"pl": "Trwają nabory na szkolenia",
                                     "en": "Open training recruitments"},
    "newsletter.orgs_heading": {"pl": "Nowi członkowie sieci", "en": "New member organisations"},
    "newsletter.feed.all": {"pl": "Cały kalendarz ({region}, ICS)",
                            "en": "The whole calendar ({region}, ICS)"},
    "newsletter.feed.picker": {"pl": "Kalendarz tylko Twoich powiatów i tematów",
                               "en": "A calendar of just your districts and topics"},
    "newsletter.feeds_heading": {"pl": "Kalendarz w Twojej aplikacji",
                                 "en": "The calendar in your app"},
    "newsletter.region_wide": {"pl": "Cały region", "en": "Whole region"},
    "newsletter.deadline": {"pl": "Zgłoszenia do: {date}", "en": "Apply by: {date}"},
    "newsletter.places": {"pl": "Miejsc: {n}", "en": "Places: {n}"},
    "newsletter.free": {"pl": "bezpłatne", "en": "free"},
    "newsletter.cost": {"pl": "Koszt: {cost} zł", "en": "Cost: PLN {cost}"},
    "newsletter.for_whom": {"pl": "Dla kogo: {who}", "en": "For: {who}"},
    "newsletter.apply": {"pl": "Zgłoszenia", "en": "Apply"},
    "newsletter.details": {"pl": "Szczegóły", "en": "Details"},
    "newsletter.register": {"pl": "Rejestracja", "en": "Registration"},
    "newsletter.organiser": {"pl": "Organizator: {name}", "en": "Organiser: {name}"},
    "newsletter.web_version": {"pl": "Wersja w przeglądarce", "en": "View in your browser"},
    "newsletter.preferences": {"pl": "Zmień ustawienia", "en": "Change preferences"},
    "newsletter.unsubscribe": {"pl": "Wypisz się", "en": "Unsubscribe"},
    "newsletter.why": {
        "pl": "Otrzymujesz tę wiadomość, bo zapisałeś(-aś) adres {email} do newslettera. "
              "Nie śledzimy otwarć ani kliknięć.",
        "en": "You receive this because {email} subscribed to the newsletter. We track "
              "neither opens nor clicks."},
    "newsletter.nothing": {"pl": "Brak pozycji w tym okresie.", "en": "Nothing in this period."},
    # web pages
    "newsletter.subscribe_title": {"pl": "Zapisz się do newslettera",
                                   "en": "Subscribe to the newsletter"},
    "newsletter.email_label": {"pl": "Adres e-mail", "en": "E-mail address"},
    "newsletter.language_label": {"pl": "Język", "en": "Language"},
    "newsletter.districts_label": {
        "pl": "Powiaty i subregiony (nic nie zaznaczone = cały region)",
        "en": "Districts and subregions (none ticked = the whole region)"},
    "newsletter.categories_label": {
        "pl": "Kategorie wydarzeń (nic nie zaznaczone = wszystkie)",
        "en": "Event categories (none ticked = all)"},
    "newsletter.submit": {"pl": "Zapisz", "en": "Save"},
    "newsletter.subscribe_done": {
        "pl": "Dziękujemy! Jeśli adres nie był jeszcze zapisany, wysłaliśmy na niego wiadomość "
              "z linkiem potwierdzającym.",
        "en": "Thank you! If the address was not subscribed yet, we have sent it a message "
              "with a confirmation link."},
    "newsletter.too_many_title": {"pl": "Zbyt wiele prób", "en": "Too many attempts"},
    "newsletter.too_many": {
        "pl": "Z Twojego adresu przyszło w krótkim czasie zbyt wiele zgłoszeń. Spróbuj ponownie "
              "za {wait}.",
        "en": "Too many requests came from your address in a short time. Please try again in "
              "{wait}."},
    "newsletter.confirmed": {
        "pl": "Zapis potwierdzony. Pierwsze wydanie przyjdzie zgodnie z harmonogramem.",
        "en": "Subscription confirmed. The first issue arrives on schedule."},
    "newsletter.preferences_title": {"pl": "Ustawienia newslettera", "en": "Newsletter preferences"},
    "newsletter.preferences_saved": {"pl": "Zapisano ustawienia.", "en": "Preferences saved."},
    "newsletter.unsubscribe_title": {"pl": "Wypisanie z newslettera",
                                     "en": "Unsubscribe from the newsletter"},
    "newsletter.unsubscribe_question": {
        "pl": "Czy na pewno wypisać adres {email}?",
        "en": "Unsubscribe {email}?"},
    "newsletter.unsubscribe_button": {"pl": "Tak, wypisz mnie", "en": "Yes, unsubscribe me"},
    "newsletter.unsubscribed": {
        "pl": "Wypisano. Nie wyślemy już newslettera na ten adres.",
        "en": "You are unsubscribed. We will not send the newsletter to this address again."},
    "newsletter.archive_title": {"pl": "Archiwum newslettera", "en": "Newsletter archive"},
    "newsletter.archive_empty": {"pl": "Nie wysłano jeszcze żadnego wydania.",
                                 "en": "No issue has been sent yet."},
})
