"""Every knob of the relay, read from the environment and `.env`; each one is documented in `.env.example`."""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.fetch import Network, parse_networks
from bot.settings_errors import is_secret, names_of, sentences

DEFAULT_USEAPI_BASE_URL = "https://api.useapi.net/v2"
DEFAULT_DISCORD_API_BASE = "https://discord.com/api/v10"
# Read from the working folder, as the Procfile and `python -m bot` run it.
ENV_FILE = Path(".env")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]


def _rule(text: str) -> PydanticCustomError:
    """A validator's refusal, worded to follow the setting's name ("PORT must ...")."""
    return PydanticCustomError("setting", text)


def _alias(suffix: str) -> AliasChoices:
    """`BACKEND_<suffix>`, also read under its first name, `USEAPI_<suffix>`."""
    return AliasChoices(f"BACKEND_{suffix}", f"USEAPI_{suffix}")


class SettingsError(Exception):
    """Settings are missing or malformed: one sentence per problem, each naming its setting, fit to print."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """The relay's configuration; field names are the environment variable names, a contract for operators."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=True,
        extra="ignore",
        # Secrets are SecretStr, so a repr of the settings never shows them.
        hide_input_in_errors=True,
    )

    DISCORD_TOKEN: SecretStr
    # Which backend: useapi, mjproxy or simulator; unset, the one whose settings are given (see `backend`).
    BACKEND: Literal["useapi", "mjproxy", "simulator"] | None = None
    MJPROXY_URL: str | None = None
    MJPROXY_TOKEN: SecretStr | None = None
    MJPROXY_AUTH_SCHEME: Literal["raw", "bearer"] = "raw"
    MJPROXY_MAX_JOBS: int = Field(default=3, ge=1, le=100)
    USEAPI_TOKEN: SecretStr | None = None
    USEAPI_BASE_URL: str = DEFAULT_USEAPI_BASE_URL
    DISCORD_API_BASE: str = DEFAULT_DISCORD_API_BASE
    PUBLIC_URL: str | None = None
    HOST: str = "0.0.0.0"  # noqa: S104 - the listener must be reachable by useapi's callbacks
    PORT: int = Field(default=8080, ge=0, le=65535)
    DATABASE_PATH: str = "data/relay.db"
    # PostgreSQL instead of DATABASE_PATH's SQLite, so that several bot processes can share one database.
    DATABASE_URL: SecretStr | None = None
    USEAPI_MAX_JOBS: int = Field(default=3, ge=1, le=15)
    USEAPI_CHANNEL: str | None = None
    USEAPI_DISCORD: SecretStr | None = None
    POLL_INTERVAL: float = Field(default=15.0, gt=0)
    # Backend-neutral names; the USEAPI_* names of the first releases are still read (documented as aliases).
    BACKEND_RETRY_SECONDS: float = Field(default=15.0, ge=0, validation_alias=_alias("RETRY_SECONDS"))
    BACKEND_RETRY_ATTEMPTS: int = Field(default=8, ge=1, validation_alias=_alias("RETRY_ATTEMPTS"))
    BACKEND_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0, validation_alias=_alias("TIMEOUT_SECONDS"))
    PROGRESS_EDIT_SECONDS: float = Field(default=2.0, ge=0)
    IMAGE_WORKERS: int = Field(default=2, ge=1, le=16)
    # How long the images members give are kept after their job finished (🔄 under a description needs its image).
    KEPT_IMAGE_DAYS: int = Field(default=7, ge=1, le=3650)
    # Networks `/describe url:` may fetch from although private (a LAN image server); public addresses always.
    IMAGE_URL_ALLOW_NETWORKS: str = ""
    DISCORD_GUILD_ID: int | None = None
    ALLOWED_GUILD_IDS: Annotated[frozenset[int], NoDecode] = frozenset()
    # Discord's gateway in shards (a bot in many servers): how many in all, and which of them this process connects.
    SHARD_COUNT: int | None = Field(default=None, ge=1, le=10_000)
    SHARD_IDS: Annotated[tuple[int, ...], NoDecode] = ()
    WEBHOOK_SECRET: SecretStr | None = None
    JOB_TIMEOUT_MINUTES: float = Field(default=35.0, gt=0)
    BACKEND_BACKOFF_SECONDS: float = Field(default=2.0, gt=0, validation_alias=_alias("BACKOFF_SECONDS"))
    BACKEND_BACKOFF_MAX_SECONDS: float = Field(default=60.0, gt=0, validation_alias=_alias("BACKOFF_MAX_SECONDS"))
    INSTANCE_LOCK_WAIT_SECONDS: float = Field(default=30.0, ge=0)
    USER_MAX_QUEUED: int = Field(default=10, ge=0)
    USER_DAILY_QUOTA: int = Field(default=0, ge=0)
    METRICS_TOKEN: SecretStr | None = None
    LOG_LEVEL: LogLevel = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    LOG_FORMAT: LogFormat = "text"

    @field_validator("IMAGE_URL_ALLOW_NETWORKS")
    @classmethod
    def _networks(cls, value: str) -> str:
        try:
            parse_networks(value)
        except ValueError as exc:
            raise _rule(f"must be networks separated by commas (like 192.168.1.0/24): {exc}") from None
        return value

    @property
    def image_url_networks(self) -> list[Network]:
        return parse_networks(self.IMAGE_URL_ALLOW_NETWORKS)

    @field_validator("ALLOWED_GUILD_IDS", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part for part in value.replace(" ", "").split(",") if part]
            if not all(part.isdigit() for part in parts):
                raise _rule("must be server ids separated by commas")
            return frozenset(int(part) for part in parts)
        return value

    @field_validator("SHARD_IDS", mode="before")
    @classmethod
    def _split_shards(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part for part in value.replace(" ", "").split(",") if part]
            if not all(part.isdigit() for part in parts):
                raise _rule("must be shard numbers separated by commas (e.g. 0,1)")
            return tuple(sorted({int(part) for part in parts}))
        return value

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        # `debug` works as well as `DEBUG`; anything else reaches the Literal check as given, to be quoted back.
        if isinstance(value, str) and value.strip().upper() in typing.get_args(LogLevel):
            return value.strip().upper()
        return value

    @field_validator("LOG_FORMAT", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in typing.get_args(LogFormat):
            return value.strip().lower()
        return value

    @field_validator("DATABASE_PATH")
    @classmethod
    def _a_path(cls, value: str) -> str:
        # An empty path would make SQLite open a throwaway temporary database: every job lost at exit.
        if not value.strip():
            raise _rule("must be a file's path")
        return value

    @field_validator("USEAPI_TOKEN", "USEAPI_DISCORD", "WEBHOOK_SECRET", "METRICS_TOKEN", "PUBLIC_URL",
                     "USEAPI_CHANNEL", "DISCORD_GUILD_ID", "BACKEND", "MJPROXY_URL", "MJPROXY_TOKEN", "DATABASE_URL",
                     "SHARD_COUNT", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `.env.example` lists optional settings as `NAME=`; an empty value means "not set", not "".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("USEAPI_BASE_URL", "DISCORD_API_BASE", "PUBLIC_URL", "MJPROXY_URL")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise _rule("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("DISCORD_API_BASE")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        # discord.py sends the token in an Authorization header, which aiohttp refuses beside a URL's own
        # user and password: the start would fail with a ValueError from deep inside a request.
        if "@" in value.split("://", 1)[-1].split("/", 1)[0]:
            raise _rule("must not carry a user or password (the bot token is Discord's credential)")
        return value

    @field_validator("MJPROXY_URL")
    @classmethod
    def _proxy_base(cls, value: str | None) -> str | None:
        if value is not None and not value.endswith("/mj"):
            raise _rule("must be the proxy's base, ending in /mj (e.g. http://127.0.0.1:8086/mj)")
        return value

    @field_validator("DISCORD_TOKEN")
    @classmethod
    def _token_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            # `DISCORD_TOKEN=` as `.env.example` lists it: not set, and said the same way.
            raise PydanticCustomError("required", "is required")
        return value

    @model_validator(mode="after")
    def _one_backend(self) -> Settings:
        if self.BACKEND is None and self.USEAPI_TOKEN is not None and self.MJPROXY_URL is not None:
            raise ValueError("USEAPI_TOKEN and MJPROXY_URL are both set: choose one with BACKEND=useapi or "
                             "BACKEND=mjproxy")
        return self

    @model_validator(mode="after")
    def _shards_in_range(self) -> Settings:
        if self.SHARD_IDS and self.SHARD_COUNT is None:
            raise ValueError("SHARD_IDS is set without SHARD_COUNT: give the number of shards in all too")
        if self.SHARD_COUNT is not None and self.SHARD_IDS and self.SHARD_IDS[-1] >= self.SHARD_COUNT:
            outside = ",".join(str(shard) for shard in self.SHARD_IDS if shard >= self.SHARD_COUNT)
            raise ValueError(f"SHARD_IDS must be shards 0 to {self.SHARD_COUNT - 1} of SHARD_COUNT="
                             f"{self.SHARD_COUNT}, got {outside}")
        return self

    @property
    def sharded(self) -> bool:
        """Whether the gateway is connected in shards (discord.py's AutoShardedBot)."""
        return self.SHARD_COUNT is not None

    @property
    def gateway_shared(self) -> bool:
        """Whether the processes on the database take turns at the gateway (one holds it, the others stand by):
        so unless SHARD_IDS gives each process shards of its own."""
        return not self.SHARD_IDS

    @property
    def backend(self) -> str:
        """The backend in use: BACKEND when set, else the one whose settings are given, else the simulator."""
        if self.BACKEND is not None:
            return self.BACKEND
        if self.USEAPI_TOKEN is not None:
            return "useapi"
        if self.MJPROXY_URL is not None:
            return "mjproxy"
        return "simulator"

    @property
    def allowed_guilds(self) -> frozenset[int] | None:
        """The servers the bot serves; None means every server it is in."""
        if self.ALLOWED_GUILD_IDS:
            return self.ALLOWED_GUILD_IDS
        if self.DISCORD_GUILD_ID is not None:
            return frozenset({self.DISCORD_GUILD_ID})
        return None

    @property
    def database_url(self) -> str | None:
        """DATABASE_URL's value (it may carry a password: never log it), None when the store is SQLite."""
        return self.DATABASE_URL.get_secret_value() if self.DATABASE_URL is not None else None

    def secrets(self) -> list[str]:
        """Every secret value, for the logging filter that masks them."""
        found = [self.DISCORD_TOKEN, self.USEAPI_TOKEN, self.USEAPI_DISCORD, self.WEBHOOK_SECRET, self.METRICS_TOKEN,
                 self.MJPROXY_TOKEN]
        values = [s.get_secret_value() for s in found if s is not None and s.get_secret_value()]
        if self.DATABASE_URL is not None:
            # The URL's password, however a log line might carry it (the masker adds its percent-encoded form).
            try:
                password = urlsplit(self.DATABASE_URL.get_secret_value()).password
            except ValueError:
                password = None
            if password:
                values.append(unquote(password))
        return values


def load_settings(*, env_file: Path | None = ENV_FILE, **overrides: object) -> Settings:
    """Read the settings from the environment and `env_file` (None: no file), `overrides` first; raise
    SettingsError with a sentence for every bad setting."""
    path = None if env_file is None else Path(os.path.abspath(env_file))
    try:
        return Settings(_env_file=path, **overrides)  # type: ignore[call-arg, arg-type]
    except ValidationError as exc:
        given: dict[str, object] = {}
        if path is not None and path.is_file():
            given.update(dotenv_values(path))
        given.update(os.environ)
        given.update(overrides)
        fields = Settings.model_fields
        secret_values = [str(given[name]) for field_name, field in fields.items() if is_secret(field)
                         for name in names_of(field_name, field) if given.get(name)]
        raise SettingsError(sentences(exc, fields, given, secret_values, path)) from None
