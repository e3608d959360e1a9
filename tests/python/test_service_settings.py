"""Settings: one pydantic-settings model, flags > environment > defaults,
each default written once, the README's table generated from the model."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

from reference_service import settings as settings_mod
from reference_service.settings import FIELDS, Settings, load

ENV = {"MODEL_PATH": "/env/models", "HOST": "0.0.0.0", "PORT": "9001", "DEFAULT_MODEL": "env_model",
       "MAX_BODY_BYTES": "1000", "MAX_SERIES": "7", "ALLOW_PICKLE": "true", "API_PROFILE": "/env/profile.toml",
       "LOG_FORMAT": "json", "LOG_LEVEL": "debug"}


@pytest.fixture
def clean_env(monkeypatch):
    for name in FIELDS:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_setting_has_an_env_var_a_flag_and_a_description():
    assert set(FIELDS) == {"model_path", "host", "port", "default_model", "max_body_bytes", "max_series",
                           "allow_pickle", "api_profile", "log_format", "log_level"}
    assert {settings_mod.env_name(n) for n in FIELDS} == set(ENV)
    flags = {a for action in settings_mod.build_parser()._actions for a in action.option_strings}
    assert {settings_mod.flag_name(n) for n in FIELDS} <= flags
    assert all(info.description for info in FIELDS.values())


def test_defaults(clean_env):
    s = load(["--model-path", "m"])
    assert (s.host, s.port, s.default_model, s.max_body_bytes, s.max_series, s.allow_pickle, s.api_profile,
            s.log_format, s.log_level) == ("127.0.0.1", 8000, None, 8 * 1024 * 1024, 20_000, False, None,
                                           "text", "info")


def test_environment_over_defaults(clean_env):
    for k, v in ENV.items():
        clean_env.setenv(k, v)
    s = load([])
    assert s == Settings(model_path="/env/models", host="0.0.0.0", port=9001, default_model="env_model",
                         max_body_bytes=1000, max_series=7, allow_pickle=True, api_profile="/env/profile.toml",
                         log_format="json", log_level="debug")


def test_flags_over_environment(clean_env):
    for k, v in ENV.items():
        clean_env.setenv(k, v)
    s = load(["--model-path", "/flag", "--host", "::1", "--port", "1234", "--default-model", "flag_model",
              "--max-body-bytes", "2000", "--max-series", "9", "--no-allow-pickle", "--api-profile", "p.toml",
              "--log-format", "TEXT", "--log-level", "warn"])
    assert s == Settings(model_path="/flag", host="::1", port=1234, default_model="flag_model",
                         max_body_bytes=2000, max_series=9, allow_pickle=False, api_profile="p.toml",
                         log_format="text", log_level="warn")


def test_a_flag_not_given_leaves_the_environment(clean_env):
    clean_env.setenv("PORT", "9001")
    clean_env.setenv("ALLOW_PICKLE", "1")
    s = load(["--model-path", "m", "--host", "h"])
    assert (s.port, s.allow_pickle, s.host) == (9001, True, "h")
    assert load(["--model-path", "m", "--allow-pickle"]).allow_pickle is True


def test_empty_variables_are_unset(clean_env):
    clean_env.setenv("DEFAULT_MODEL", "")
    clean_env.setenv("API_PROFILE", "")
    s = load(["--model-path", "m"])
    assert s.default_model is None and s.api_profile is None


@pytest.mark.parametrize("argv,env,words", [
    ([], {}, ["--model-path / MODEL_PATH is required"]),
    (["--model-path", "m", "--port", "x"], {}, ["--port / PORT", "integer"]),
    (["--model-path", "m"], {"MAX_SERIES": "0"}, ["--max-series / MAX_SERIES", "greater than 0"]),
    (["--model-path", "m"], {"ALLOW_PICKLE": "maybe"}, ["--allow-pickle / ALLOW_PICKLE"]),
    (["--model-path", "m"], {"LOG_FORMAT": "xml"}, ["--log-format / LOG_FORMAT"]),
    (["--model-path", "m", "--log-level", "loud"], {}, ["--log-level", "invalid choice"]),
])
def test_a_bad_value_exits_2_naming_it(clean_env, capsys, argv, env, words):
    for k, v in env.items():
        clean_env.setenv(k, v)
    with pytest.raises(SystemExit) as exit_:
        load(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err, err


def test_each_default_is_written_once():
    """The limits live in settings.py only: the rest of the package reads them
    from the settings (they were repeated in four places)."""
    literals = re.compile(r"\b(20_?000|8 \* 1024 \* 1024|8388608|8 \* MIB)\b")
    package = REPO / "python/reference_service"
    for path in sorted(package.glob("*.py")):
        if path.name == "settings.py":
            continue
        hits = [line for line in path.read_text().splitlines() if literals.search(line)]
        assert not hits, f"{path.relative_to(REPO)} repeats a default of settings.py: {hits}"


def test_readme_table_is_generated_from_the_model():
    text = settings_mod.README.read_text()
    assert text == settings_mod.readme_with_table(text), (
        "python/reference_service/README.md's settings table differs from reference_service/settings.py: "
        "regenerate it with `PYTHONPATH=python python -m reference_service.settings --write-readme`"
    )
    for name in FIELDS:
        assert f"`{settings_mod.env_name(name)}`" in text
