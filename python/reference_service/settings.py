"""Every setting of the reference service, in one model.

Each field is read from its environment variable (the field's name in upper
case: MODEL_PATH, PORT, ...) and from its flag (`--model-path`, `--port`,
...); a flag wins over the environment, the environment over the default.
Each default is written here once. The table in README.md ("Settings") is
generated from this model: `python -m reference_service.settings --write-readme`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024
PROG = "reference-service"

LogFormat = Literal["text", "json"]
# The Rust service's tracing levels, and Python's names for two of them.
LogLevel = Literal["trace", "debug", "info", "warn", "warning", "error"]


class Settings(BaseSettings):
    """The reference service's configuration: flags > environment > defaults."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        env_ignore_empty=True,  # DEFAULT_MODEL= is unset, as before
        extra="forbid",
        frozen=True,
        protected_namespaces=(),  # model_path is ours, not pydantic's
    )

    model_path: str = Field(
        description="directory of bundles: one bundle (`nf.save(dir, save_dataset=False)`) per subdirectory",
        json_schema_extra={"metavar": "DIR"},
    )
    host: str = Field("127.0.0.1", description="listen address", json_schema_extra={"metavar": "H"})
    port: int = Field(8000, ge=0, le=65535, description="listen port", json_schema_extra={"metavar": "N"})
    default_model: str | None = Field(
        None,
        description="bundle used without `?model=`; none: `?model=` is needed when several bundles are loaded",
        json_schema_extra={"metavar": "NAME"},
    )
    max_body_bytes: int = Field(
        8 * MIB, gt=0, description="largest accepted `/predict` body; larger is 413 `body_too_large`",
        json_schema_extra={"metavar": "N"},
    )
    max_series: int = Field(
        20_000, gt=0, description="most series in one `/predict`; more is 422 `too_many_series`",
        json_schema_extra={"metavar": "N"},
    )
    allow_pickle: bool = Field(
        False,
        description="read bundles written before NeuralForecast 3.3 with pickle, which executes any code they "
        "hold (NeuralForecast 3.3's restricted reader refuses those with fitted local scalers or written by 2.x): "
        "only for bundles as trusted as the service that wrote them",
    )
    api_profile: str | None = Field(
        None,
        description="the request/response shapes of the service being replaced, the same TOML file as the Rust "
        "service's `--api-profile` (`docs/profiles.md`); none: `docs/contract.md`",
        json_schema_extra={"metavar": "FILE"},
    )
    log_format: LogFormat = Field(
        "text", description="`text`, or `json`: one object per line with the Rust service's fields "
        "(`timestamp`, `level`, `fields.message`, `target`)",
    )
    log_level: LogLevel = Field(
        "info", description="least severe level logged: `trace`, `debug`, `info`, `warn`, `error`",
    )

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


FIELDS: dict[str, FieldInfo] = Settings.model_fields


def env_name(name: str) -> str:
    return name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _choices(info: FieldInfo) -> tuple[str, ...] | None:
    if get_origin(info.annotation) is Literal:
        return tuple(str(c) for c in get_args(info.annotation))
    return None


def default_text(info: FieldInfo) -> str:
    """The default as the docs show it."""
    if info.is_required():
        return "required"
    value = info.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value >= MIB and value % MIB == 0:
        return f"{value} ({value // MIB} MiB)"
    return str(value)


def _metavar(info: FieldInfo) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return str(extra.get("metavar", "VALUE"))


def _flag_usage(name: str, info: FieldInfo) -> str:
    if info.annotation is bool:
        return f"`{flag_name(name)}` / `--no-{flag_name(name)[2:]}`"
    choices = _choices(info)
    # a | in a table cell, even in a code span, is escaped
    value = "\\|".join(choices) if choices else _metavar(info)
    return f"`{flag_name(name)} {value}`"


def build_parser() -> argparse.ArgumentParser:
    """One flag per field; a flag not given leaves the field to its
    environment variable or default (argparse.SUPPRESS)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="The FastAPI + NeuralForecast reference service (docs/contract.md). Every flag falls back "
        "to its environment variable, then to its default.",
    )
    for name, info in FIELDS.items():
        help_text = f"{info.description} ({env_name(name)}; default: {default_text(info)})".replace("%", "%%")
        if info.annotation is bool:
            p.add_argument(flag_name(name), dest=name, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=help_text)
            continue
        choices = _choices(info)
        p.add_argument(flag_name(name), dest=name, default=argparse.SUPPRESS, choices=choices,
                       type=str.lower if choices else str, metavar=None if choices else _metavar(info),
                       help=help_text)
    return p


def _error_line(err: dict[str, Any]) -> str:
    name = str(err["loc"][0]) if err.get("loc") else ""
    where = f"{flag_name(name)} / {env_name(name)}" if name in FIELDS else name or "settings"
    if err.get("type") == "missing":
        return f"{where} is required"
    return f"{where}: {err['msg']} (got {err.get('input')!r})"


def load(argv: Sequence[str] | None = None) -> Settings:
    """The settings from flags (argv, default sys.argv[1:]) over the
    environment over the defaults; a bad or missing value exits with status 2
    and a line naming the flag and the variable."""
    parser = build_parser()
    given = vars(parser.parse_args(argv))
    try:
        return Settings(**given)
    except ValidationError as e:
        parser.error("; ".join(_error_line(dict(err)) for err in e.errors()))


# ---------------------------------------------------------------- the README table

README = Path(__file__).with_name("README.md")
BEGIN = "<!-- settings table: generated from settings.py (python -m reference_service.settings --write-readme) -->"
END = "<!-- end of settings table -->"


def markdown_table() -> str:
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for name, info in FIELDS.items():
        description = (info.description or "").replace("|", "\\|")
        rows.append(f"| {_flag_usage(name, info)} | `{env_name(name)}` | {default_text(info)} | {description} |")
    return "\n".join(rows)


def readme_with_table(text: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{README} has no settings table markers ({BEGIN} ... {END})")
    return pattern.sub(lambda _: f"{BEGIN}\n{markdown_table()}\n{END}", text)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reference_service.settings",
                                description="Print the settings table, or write it into README.md.")
    p.add_argument("--write-readme", action="store_true", help=f"rewrite the table in {README.name}")
    args = p.parse_args(argv)
    if not args.write_readme:
        print(markdown_table())
        return 0
    text = README.read_text()
    new = readme_with_table(text)
    if new != text:
        README.write_text(new)
        print(f"{os.path.relpath(README)}: settings table updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
