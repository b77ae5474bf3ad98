"""Configuration: lookup order, environment overrides, and errors a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from infranet.config import ConfigError, load_settings, masked_dump


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("INFRANET_") and name != "INFRANET_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file() -> None:
    loaded = load_settings()
    assert loaded.source is None
    settings = loaded.settings
    assert settings.region.timezone == "Europe/Warsaw"
    assert settings.database.url == "sqlite+aiosqlite:///data/infranet.db"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert settings.telegram.token is None
    assert settings.newsletter.horizon_days == 14


def test_lookup_order_explicit_then_env_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "config.toml", "[http]\nport = 1001\n")
    assert load_settings().settings.http.port == 1001
    env_file = write(tmp_path / "env.toml", "[http]\nport = 1002\n")
    monkeypatch.setenv("INFRANET_CONFIG", str(env_file))
    assert load_settings().settings.http.port == 1002
    explicit = write(tmp_path / "explicit.toml", "[http]\nport = 1003\n")
    assert load_settings(explicit).settings.http.port == 1003


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "config.toml", '[http]\nport = 1001\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("INFRANET_HTTP__PORT", "9090")
    monkeypatch.setenv("INFRANET_TELEGRAM__TOKEN", "123:secret-token")
    settings = load_settings().settings
    assert settings.http.port == 9090
    assert settings.http.host == "0.0.0.0"  # the rest of the section stays from the file
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == "123:secret-token"


def test_typo_in_a_key_names_the_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", '[telegram]\ntokne = "abc"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "telegram.tokne" in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'smpt'"):
        load_settings(write(tmp_path / "c.toml", "[smpt]\nhost = 'x'\n"))


def test_wrong_type_names_key_value_and_expectation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path / "c.toml", '[http]\nport = "eighty"\n'))
    message = str(err.value)
    assert "http.port" in message and "'eighty'" in message and "integer" in message


def test_invalid_toml_reports_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path / "c.toml", '[http]\nport = 80\nhost = "x\n'))
    assert "line 3" in str(err.value) and "column" in str(err.value)


def test_invalid_enum_and_timezone_values_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path / "c.toml",
                            '[smtp]\ntls = "ssl"\n[region]\ntimezone = "Europe/Warszawa"\n'))
    message = str(err.value)
    assert "smtp.tls" in message and "'none', 'starttls' or 'implicit'" in message
    assert "Europe/Warszawa" in message and "IANA" in message


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_secrets_are_masked_in_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFRANET_TELEGRAM__TOKEN", "123:very-secret")
    monkeypatch.setenv("INFRANET_SMTP__PASSWORD", "hunter2")
    dumped = masked_dump(load_settings().settings)
    assert dumped["telegram"]["token"] == "***"
    assert dumped["smtp"]["password"] == "***"
    assert "very-secret" not in repr(dumped) and "hunter2" not in repr(dumped)


def test_example_config_is_valid_and_documents_every_key() -> None:
    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    settings = load_settings(example).settings
    text = example.read_text(encoding="utf-8")
    for section, values in masked_dump(settings).items():
        for key, value in values.items():
            if isinstance(value, dict):
                for sub in value:
                    assert f"{sub} =" in text, f"{section}.{key}.{sub} is not documented"
                continue
            assert f"{key} =" in text, f"{section}.{key} is not documented in config.example.toml"
