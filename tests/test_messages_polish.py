"""Refusals that reach a Polish reader are Polish through and through: business code raises
a message id with parameters, never an English `detail=` sentence."""

from __future__ import annotations

import pytest

from infranet.calendar.feed_filter import parse_filter
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.newsletter.subscriber_data import import_csv
from infranet.storage.actors import Actor

ENGLISH = ("choose from", "unknown", "must", "the first row")


def test_an_unknown_feed_category_is_refused_in_the_readers_language(ctx: AppContext) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_filter(ctx, {"category": ["impreza"]})
    polish = info.value.localized("pl")
    assert "impreza" in polish and "wybierz spośród" in polish and "training" in polish
    assert not any(word in polish for word in ENGLISH)


async def test_a_csv_without_an_email_column_is_refused_in_polish(ctx: AppContext) -> None:
    with pytest.raises(ValidationFailed) as info:
        async with ctx.db.transaction() as session:
            await import_csv(session, ctx, Actor.cli(), "imię;nazwisko\nAla;Nowak\n", consented=True)
    polish = info.value.localized("pl")
    assert "Pierwszy wiersz" in polish and "email" in polish
    assert not any(word in polish for word in ENGLISH)
