"""The bot's runtime and core commands, end to end through the Bot API emulator."""

from __future__ import annotations

from tests.bot_fixtures import ADMIN_ID, BotHarness


async def test_start_help_lang_for_a_stranger(bot: BotHarness) -> None:
    reply = await bot.api.ask(5001, "/start")
    assert "Cześć" in reply.text and "/join" in reply.text
    help_text = (await bot.api.ask(5001, "/help")).text
    assert "/start" in help_text and "/join" in help_text
    assert "/members" not in help_text
    english = await bot.api.ask(5002, "/start", language_code="en-GB")
    assert "Hi!" in english.text
    choose = await bot.api.ask(5001, "/lang")
    edited = await bot.api.click(5001, choose, choose.button("English"))
    assert edited.kind == "edit" and "English" in edited.text
    assert "Hi!" in (await bot.api.ask(5001, "/start")).text


async def test_commands_registered_in_polish_and_english(bot: BotHarness) -> None:
    default = {c["command"]: c["description"] for c in bot.api.commands[""]}
    english = {c["command"]: c["description"] for c in bot.api.commands["en"]}
    assert default["help"] == "lista komend" and english["help"] == "list of commands"
    # Anyone's menu: no member or admin commands (those are in the member's own menu), /cancel.
    assert "refer" not in default and "members" not in default and "cancel" in default
    admin = {c["command"] for c in bot.api.commands[f"chat:{ADMIN_ID}:"]}
    assert {"members", "pending", "refer"} <= admin  # the admin's own menu


async def test_admin_sees_admin_commands_and_unknown_command(bot: BotHarness) -> None:
    reply = await bot.api.ask(ADMIN_ID, "/nonsense")
    assert "/help" in reply.text
    reply = await bot.api.ask(ADMIN_ID, "/cancel")
    assert "nic do anulowania" in reply.text.lower()


async def test_every_member_command_refused_for_a_stranger_in_one_line(bot: BotHarness) -> None:
    from infranet.bot.handlers import all_commands

    stranger = 5099
    gated = [c for c in all_commands() if c.access != "anyone"]
    # More member commands than a minute's limit of one user: the limit is not tested here.
    bot.ctx.settings.telegram = bot.ctx.settings.telegram.model_copy(
        update={"commands_per_minute": 4 * len(gated)})
    await bot.restart()
    assert {"refer", "members", "approve"} <= {c.name for c in gated}
    for command in gated:
        reply = await bot.api.ask(stranger, f"/{command.name}")
        assert reply.text == ("Z tej komendy mogą korzystać tylko zatwierdzeni członkowie sieci. "
                              "Dołącz przez /join."), command.name
    await bot.api.silence(stranger, 0.3)  # exactly one line each


async def test_stranger_language_survives_restart(bot: BotHarness) -> None:
    await bot.api.ask(5003, "/lang en")
    await bot.restart()
    assert "Hi!" in (await bot.api.ask(5003, "/start")).text


async def test_start_for_an_admin_points_to_admin_work(bot: BotHarness) -> None:
    await bot.member(ADMIN_ID, "Sekretariat Sieci", admin=True, name="Ewa")
    welcome = await bot.api.ask(ADMIN_ID, "/start")  # one message, with next-step buttons
    assert "Witaj, Ewa (Sekretariat Sieci)" in welcome.text
    assert "/pending" in welcome.text and welcome.buttons


def test_persistence_encoding_round_trip() -> None:
    from datetime import UTC, date, datetime, time
    from decimal import Decimal

    from infranet.bot.state_codec import decode, encode, encode_data

    value = {"first": date(2026, 12, 5), "at": datetime(2026, 12, 5, 9, tzinfo=UTC),
             "hours": (time(10), time(14)), "cost": Decimal("12.50"), "tags": {"a"},
             "by_id": {1: "x"}, "list": [1, "two", None, True], "__sneaky": 1}
    assert decode(encode(value)) == value
    kept = encode_data({"ok": 1, "orm": object()}, "user_data[1]")
    assert kept == {"ok": 1}  # what cannot be stored is dropped, not everything
