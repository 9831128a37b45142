"""Every knob of the relay, read from the environment and `.env`; each one is documented in `.env.example`."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_USEAPI_BASE_URL = "https://api.useapi.net/v2"
DEFAULT_DISCORD_API_BASE = "https://discord.com/api/v10"


def _alias(suffix: str) -> AliasChoices:
    """`BACKEND_<suffix>`, also read under its first name, `USEAPI_<suffix>`."""
    return AliasChoices(f"BACKEND_{suffix}", f"USEAPI_{suffix}")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it, fit to print."""


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
    DISCORD_GUILD_ID: int | None = None
    ALLOWED_GUILD_IDS: Annotated[frozenset[int], NoDecode] = frozenset()
    WEBHOOK_SECRET: SecretStr | None = None
    JOB_TIMEOUT_MINUTES: float = Field(default=35.0, gt=0)
    BACKEND_BACKOFF_SECONDS: float = Field(default=2.0, gt=0, validation_alias=_alias("BACKOFF_SECONDS"))
    BACKEND_BACKOFF_MAX_SECONDS: float = Field(default=60.0, gt=0, validation_alias=_alias("BACKOFF_MAX_SECONDS"))
    INSTANCE_LOCK_WAIT_SECONDS: float = Field(default=30.0, ge=0)
    USER_MAX_QUEUED: int = Field(default=10, ge=0)
    USER_DAILY_QUOTA: int = Field(default=0, ge=0)
    METRICS_TOKEN: SecretStr | None = None
    LOG_LEVEL: str = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL"))

    @field_validator("ALLOWED_GUILD_IDS", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)
        return value

    @field_validator("USEAPI_TOKEN", "USEAPI_DISCORD", "WEBHOOK_SECRET", "METRICS_TOKEN", "PUBLIC_URL",
                     "USEAPI_CHANNEL", "DISCORD_GUILD_ID", "BACKEND", "MJPROXY_URL", "MJPROXY_TOKEN", "DATABASE_URL",
                     mode="before")
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
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("MJPROXY_URL")
    @classmethod
    def _proxy_base(cls, value: str | None) -> str | None:
        if value is not None and not value.endswith("/mj"):
            raise ValueError("must be the proxy's base, ending in /mj (e.g. http://127.0.0.1:8086/mj)")
        return value

    @field_validator("DISCORD_TOKEN")
    @classmethod
    def _token_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is empty")
        return value

    @model_validator(mode="after")
    def _one_backend(self) -> Settings:
        if self.BACKEND is None and self.USEAPI_TOKEN is not None and self.MJPROXY_URL is not None:
            raise ValueError("USEAPI_TOKEN and MJPROXY_URL are both set: choose one with BACKEND=useapi or "
                             "BACKEND=mjproxy")
        return self

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


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's report into one line that names the offending setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"]:  # a rule across settings: its own sentence names them
            raise SettingsError(first["msg"].removeprefix("Value error, ")) from None
        name = ".".join(str(part) for part in first["loc"])
        reason = "is required" if first["type"] == "missing" else first["msg"]
        more = len(exc.errors()) - 1
        tail = f" (and {more} more)" if more else ""
        raise SettingsError(f"setting {name} {reason}{tail}") from None
