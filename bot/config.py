"""Configuration from the environment, per the interface contract (section 1).

Every variable is read by pydantic-settings. A missing or malformed variable stops start-up
with one line naming it (:class:`ConfigError`); secret values are held as ``SecretStr`` and
are never part of an error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.domain.lifecycle import LifecyclePolicy
from bot.domain.risk import DEFAULT_SENSITIVE_PERMISSIONS

CommaList = Annotated[tuple[str, ...], NoDecode]
# The rules across variables (README, "Configuration"), worded once for Settings and ``check``.
APPROVERS_MISSING = "APPROVER_USER_IDS or APPROVER_USERGROUP_ID must be set"
SIGNING_SECRET_MISSING = "SLACK_SIGNING_SECRET is required in HTTP mode (no SLACK_APP_TOKEN)"  # noqa: S105
DYNAMODB_TABLE_MISSING = "DYNAMODB_TABLE is required with STORE=dynamodb"
NOTICE_NOT_BEFORE_MAX_AGE = "KEY_ROTATION_NOTICE_DAYS must be smaller than KEY_MAX_AGE_DAYS"
# Shortest SLACK_BOT_TOKEN accepted: the sealing key of custom passwords needs 16 bytes of it.
MIN_BOT_TOKEN_LENGTH = 16
# Shortest CUSTOM_PASSWORD_SEALING_KEY accepted: 32 characters (``secrets.token_urlsafe(32)`` gives 43).
MIN_SEALING_KEY_LENGTH = 32


class ConfigError(Exception):
    """Raised by :func:`load_settings` with a one-line, secret-free message naming the variable."""


class Settings(BaseSettings):
    """The bot's settings. Field names are the lower-case environment variable names.

    Durations are in seconds. List variables (``APPROVER_USER_IDS``, ``REQUESTER_USER_IDS``,
    ``SENSITIVE_PERMISSIONS``) are comma-separated.
    """

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", hide_input_in_errors=True)

    slack_bot_token: SecretStr
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")
    # The key custom passwords are sealed under while a request waits (bot.credentials.sealing);
    # unset, SLACK_BOT_TOKEN keys them, so rotating that token breaks pending requests.
    custom_password_sealing_key: SecretStr | None = None
    # Where the four secret variables above are kept instead of the environment (bot.aws.secrets):
    # secretsmanager:<secret name or ARN> or ssm:/<parameter path>, read once at start-up.
    slack_secrets_from: str | None = Field(default=None, pattern=r"^(secretsmanager:.+|ssm:/.+)$")
    approval_channel_id: str = Field(pattern=r"^[CGD][A-Z0-9]{2,}$")
    approver_user_ids: CommaList = ()
    approver_usergroup_id: str | None = None
    requester_user_ids: CommaList = ()
    requester_usergroup_id: str | None = None
    public_base_url: AnyHttpUrl
    database_path: Path = Path("iam-user-bot.db")
    # Where the state lives (contract, section 6): the SQLite file above, or a DynamoDB table that
    # several processes and hosts share (reached through the standard boto3 chain).
    store: Literal["sqlite", "dynamodb"] = "sqlite"
    dynamodb_table: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9_.-]{3,255}$")
    credential_link_ttl_seconds: int = Field(default=86400, ge=60, le=7 * 86400)
    pending_request_ttl_seconds: int = Field(default=72 * 3600, ge=60)
    expiry_check_interval_seconds: float = Field(default=60.0, gt=0, le=3600)
    # How often the whole IAM account is read for the options menus (bot.aws.typeahead): one
    # worker per server reads it; a search that finds little reads one kind sooner.
    catalog_refresh_seconds: float = Field(default=300.0, ge=10, le=86400)
    # The users' life after onboarding (contract, section 5): key age, rotation notices, unused
    # credentials (CIS AWS Foundations 1.12 and 1.14), and how often all of it is checked.
    key_max_age_days: int = Field(default=90, ge=1, le=3650)
    key_rotation_notice_days: int = Field(default=14, ge=0, le=3650)
    key_rotation_enforce: bool = False
    unused_credentials_days: int = Field(default=45, ge=1, le=3650)
    lifecycle_check_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)
    sensitive_permissions: CommaList = DEFAULT_SENSITIVE_PERMISSIONS
    sensitive_approvals_required: int = Field(default=2, ge=1, le=5)
    port: int = Field(default=3000, ge=1, le=65535)
    # One-time link hardening (bot.web): proxies in front of the bot whose X-Forwarded-For is
    # trusted (0: use the TCP peer), and the per-client limit on reveal POSTs (Flask-Limiter
    # syntax) with its storage ("memory://" is per process; see bot.web for several workers).
    trusted_proxy_count: int = Field(default=0, ge=0, le=5)
    reveal_rate_limit: str = Field(default="10 per minute; 30 per hour", pattern=r"^[\w /;,]+$")
    rate_limit_storage_uri: str = "memory://"
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _unquote(cls, data: object) -> object:
        """A value wrapped in one pair of matching quotes is read without them.

        ``bot.env`` quotes values with spaces (``REVEAL_RATE_LIMIT="10 per minute; 30 per hour"``)
        so that a shell can source it; ``docker run --env-file`` passes those quotes through.
        """
        if not isinstance(data, dict):
            return data
        return {
            key: value[1:-1] if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] in "\"'" else value
            for key, value in data.items()
        }

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.strip().lower() if info.field_name == "log_format" else value.strip().upper()

    @field_validator("approver_user_ids", "requester_user_ids", "sensitive_permissions", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("approver_user_ids", "requester_user_ids")
    @classmethod
    def _slack_user_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for user_id in value:
            if not user_id.isalnum() or user_id[0] not in "UW":
                raise ValueError("must be Slack user IDs such as U012ABCDEF, separated by commas")
        return value

    @field_validator(
        "approver_usergroup_id",
        "requester_usergroup_id",
        "slack_app_token",
        "slack_signing_secret",
        "dynamodb_table",
        "slack_secrets_from",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("reveal_rate_limit")
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError("must look like '10 per minute; 30 per hour'") from None
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if not token.startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        if len(token) < MIN_BOT_TOKEN_LENGTH:
            # Real bot tokens are far longer; the token also keys the sealing of custom
            # passwords (bot.credentials.sealing needs at least 16 bytes), so a stub would crash start-up.
            raise ValueError(f"is too short to be a bot token (at least {MIN_BOT_TOKEN_LENGTH} characters)")
        return value

    @field_validator("custom_password_sealing_key")
    @classmethod
    def _sealing_key_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SEALING_KEY_LENGTH:
            raise ValueError(
                f"is too short (at least {MIN_SEALING_KEY_LENGTH} random characters; "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' makes one)"
            )
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> Settings:
        if not self.approver_user_ids and not self.approver_usergroup_id:
            raise ValueError(APPROVERS_MISSING)
        if self.slack_app_token is None and self.slack_signing_secret is None:
            raise ValueError(SIGNING_SECRET_MISSING)
        if self.store == "dynamodb" and not self.dynamodb_table:
            raise ValueError(DYNAMODB_TABLE_MISSING)
        if self.key_rotation_notice_days >= self.key_max_age_days:
            raise ValueError(NOTICE_NOT_BEFORE_MAX_AGE)
        return self

    @property
    def lifecycle_policy(self) -> LifecyclePolicy:
        """``KEY_MAX_AGE_DAYS``, ``KEY_ROTATION_NOTICE_DAYS``, ``KEY_ROTATION_ENFORCE`` and
        ``UNUSED_CREDENTIALS_DAYS`` as the lifecycle rules take them."""
        return LifecyclePolicy(
            max_age_days=self.key_max_age_days,
            notice_days=self.key_rotation_notice_days,
            enforce=self.key_rotation_enforce,
            unused_days=self.unused_credentials_days,
        )

    @property
    def socket_mode(self) -> bool:
        """True when ``SLACK_APP_TOKEN`` is set: Slack traffic then arrives over Socket Mode."""
        return self.slack_app_token is not None

    @property
    def slack_base_url(self) -> str:
        """The Web API base URL with the trailing ``/`` that ``slack_sdk`` needs for ``urljoin``."""
        url = str(self.slack_api_url)
        return url if url.endswith("/") else url + "/"

    def credential_link(self, secret_id: str, key: str) -> str:
        """``PUBLIC_BASE_URL`` + ``/credentials/<id>#<key>`` (contract, "Credentials")."""
        return f"{str(self.public_base_url).rstrip('/')}/credentials/{secret_id}#{key}"


def cross_field_problems(environ: Mapping[str, str]) -> list[str]:
    """The rules across variables that ``environ`` (raw values, names in any case) breaks.

    The same rules as :class:`Settings`, read without it: pydantic skips model-level rules
    once any single variable is invalid, and ``check`` must still name every problem.
    """
    values = {name.upper(): value for name, value in environ.items()}
    problems = []
    approver_ids = [part for part in values.get("APPROVER_USER_IDS", "").split(",") if part.strip()]
    if not approver_ids and not values.get("APPROVER_USERGROUP_ID"):
        problems.append(APPROVERS_MISSING)
    if not values.get("SLACK_APP_TOKEN") and not values.get("SLACK_SIGNING_SECRET"):
        problems.append(SIGNING_SECRET_MISSING)
    if values.get("STORE", "").strip().lower() == "dynamodb" and not values.get("DYNAMODB_TABLE"):
        problems.append(DYNAMODB_TABLE_MISSING)
    try:
        notice = int(values.get("KEY_ROTATION_NOTICE_DAYS") or 14)
        max_age = int(values.get("KEY_MAX_AGE_DAYS") or 90)
    except ValueError:
        notice, max_age = 0, 1  # a malformed number is the variable's own problem, named on its own
    if notice >= max_age:
        problems.append(NOTICE_NOT_BEFORE_MAX_AGE)
    return problems


def describe_errors(error: ValidationError) -> list[tuple[str, str]]:
    """Every problem: ``(VARIABLE, one line naming it and what is wrong)``, never a value.

    ``VARIABLE`` is ``""`` for a rule across variables (such as "one of these two").
    """
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        variable = "_".join(str(part) for part in item["loc"]).upper()
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            problems.append((variable, f"configuration: {variable} is required but not set"))
        elif not variable:
            problems.append(("", f"configuration: {message}"))
        else:
            problems.append((variable, f"configuration: {variable} is invalid: {message}"))
    return problems


def describe_error(error: ValidationError) -> str:
    """One line naming the first bad variable and what is wrong, never its value."""
    return describe_errors(error)[0][1]


def load_settings(**overrides: object) -> Settings:
    """Read :class:`Settings` from the environment (``overrides`` win, for tests and tools).

    Raises:
        ConfigError: with one secret-free line naming the missing or malformed variable.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_error(error)) from None
