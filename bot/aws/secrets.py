"""The bot's own secrets from AWS Secrets Manager or SSM Parameter Store (``SLACK_SECRETS_FROM``).

On AWS Lambda (or anywhere the environment should not hold secrets) ``SLACK_SECRETS_FROM`` names
where ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET`` and, if used, ``SLACK_APP_TOKEN`` and
``CUSTOM_PASSWORD_SEALING_KEY`` are kept; they are read once, at start-up:

- ``secretsmanager:<secret name or ARN>``: one secret whose ``SecretString`` is a JSON object with
  those variable names as keys (one ``GetSecretValue`` call);
- ``ssm:<path>``: ``SecureString`` parameters ``<path>/SLACK_BOT_TOKEN`` and so on (one
  ``GetParametersByPath`` call with decryption, paginated).

A variable may come from one place only: set both in the environment and in the store, start-up
stops. Errors name the variable, secret or parameter, never a value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from bot.config import ConfigError, Settings, load_settings

SOURCE_VARIABLE = "SLACK_SECRETS_FROM"
SECRET_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "CUSTOM_PASSWORD_SEALING_KEY")


def read_secrets(source: str, session: Any | None = None) -> dict[str, str]:
    """The secret variables kept at ``source`` (``secretsmanager:<id>`` or ``ssm:<path>``):
    ``{variable name: value}``, only names in :data:`SECRET_VARIABLES`.

    Raises:
        ConfigError: a malformed source, an unreadable secret or parameter path (with AWS's error
            code), a secret that is not a JSON object, or a name that is not a secret variable.
    """
    kind, _, where = source.partition(":")
    session = session or boto3.session.Session()
    try:
        if kind == "secretsmanager" and where:
            text = session.client("secretsmanager").get_secret_value(SecretId=where)["SecretString"]
            try:
                found = json.loads(text)
            except ValueError:
                found = None
            if not isinstance(found, dict):
                raise ConfigError(f"{SOURCE_VARIABLE}: secret {where} must hold a JSON object of variable names")
        elif kind == "ssm" and where.startswith("/"):
            path = where.rstrip("/")
            pages = session.client("ssm").get_paginator("get_parameters_by_path")
            parameters = [
                parameter
                for page in pages.paginate(Path=path, Recursive=False, WithDecryption=True)
                for parameter in page["Parameters"]
            ]
            plain = sorted(p["Name"] for p in parameters if p.get("Type") != "SecureString")
            if plain:  # names only: a parameter name is not a secret
                raise ConfigError(f"{SOURCE_VARIABLE}: {', '.join(plain)} must be SecureString parameters")
            found = {parameter["Name"][len(path) + 1 :]: parameter["Value"] for parameter in parameters}
        else:
            raise ConfigError(f"{SOURCE_VARIABLE} must be secretsmanager:<secret name or ARN> or ssm:/<path>")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise ConfigError(f"{SOURCE_VARIABLE}: cannot read {source} ({code})") from None
    except BotoCoreError as error:
        raise ConfigError(f"{SOURCE_VARIABLE}: cannot read {source} ({type(error).__name__})") from None
    unknown = set(found) - set(SECRET_VARIABLES)
    if unknown:
        # Not the names themselves: a value pasted where a name belongs would be printed.
        raise ConfigError(
            f"{SOURCE_VARIABLE}: {source} holds {len(unknown)} name(s) that are not among {', '.join(SECRET_VARIABLES)}"
        )
    return {name: str(value) for name, value in found.items()}


def load_settings_from_environment(environ: Mapping[str, str] | None = None, session: Any | None = None) -> Settings:
    """:func:`bot.config.load_settings`, with the secret variables read from
    ``SLACK_SECRETS_FROM`` first when it is set.

    Raises:
        ConfigError: as :func:`read_secrets`, a variable set both in the environment and at the
            source, or any setting missing or malformed.
    """
    environ = os.environ if environ is None else environ
    source = environ.get(SOURCE_VARIABLE, "").strip()
    if not source:
        return load_settings()
    found = read_secrets(source, session)
    twice = sorted(name for name in found if environ.get(name))
    if twice:
        raise ConfigError(f"{', '.join(twice)} set both in the environment and in {SOURCE_VARIABLE}; keep one")
    return load_settings(**{name.lower(): value for name, value in found.items()})
