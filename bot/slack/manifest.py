"""The Slack app manifest, filled in for one deployment (``iam-user-bot manifest``).

The template is the repository's top-level ``manifest.yml``; building a wheel copies it into the
package as ``bot/slack/manifest.yml`` (``setup.py``), so an installed bot can print it. Its request
URLs use the placeholder ``https://bot.example.com``. In HTTP mode every URL
becomes ``<base>/slack/events``, the bot's single Slack endpoint (contract, section 2); in Socket
Mode the URLs are removed and ``socket_mode_enabled`` is set, since Slack then pushes over the
websocket the bot opens with ``SLACK_APP_TOKEN``.

The template is YAML because that is the format Slack's manifest editor shows and people paste;
it is read with ``yaml.safe_load`` (plain data only, no object construction) and checked against
the manifest rules that Slack enforces on paste (:func:`problems`), so a broken template fails
here and in the tests rather than in Slack's UI.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

PLACEHOLDER = "https://bot.example.com"
EVENTS_PATH = "/slack/events"
# Limits from Slack's manifest reference (api.slack.com/reference/manifests).
NAME_MAX = 35
DESCRIPTION_MAX = 140
COMMAND_MAX = 32
DISPLAY_NAME_MAX = 80

Manifest = dict[str, Any]


class ManifestError(ValueError):
    """A bad ``--url`` or a template that breaks Slack's manifest rules; the message says which."""


def template_text() -> str:
    """The template's text: the copy inside an installed package, else (a source checkout) the
    repository's top-level ``manifest.yml``.

    Raises:
        ManifestError: neither exists (a package built without ``setup.py``'s copy step).
    """
    packaged = resources.files("bot.slack").joinpath("manifest.yml")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "manifest.yml"
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    raise ManifestError("the Slack app manifest is missing from this installation (bot/slack/manifest.yml)")


def load_template() -> Manifest:
    """The manifest template as plain data (dicts, lists, strings, numbers, booleans).

    Raises:
        ManifestError: the template is missing or not a YAML mapping.
    """
    data = yaml.safe_load(template_text())
    if not isinstance(data, dict):
        raise ManifestError("the Slack app manifest template must be a YAML mapping")
    return data


def public_base_url(url: str) -> str:
    """``url`` checked as a request URL base: ``https://host[/path]``, no query or fragment.

    Slack only sends to HTTPS request URLs. Returns the URL without a trailing ``/``.

    Raises:
        ManifestError: naming what is wrong with ``url``.
    """
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ManifestError(f"--url must be an https:// URL (Slack only calls HTTPS request URLs), not {url!r}")
    if parts.query or parts.fragment:
        raise ManifestError("--url must be the bot's base URL (PUBLIC_BASE_URL), without ? or #")
    return url.strip().rstrip("/")


def render(url: str | None = None, socket_mode: bool = False, template: Manifest | None = None) -> Manifest:
    """The manifest for HTTP mode at ``url`` (``PUBLIC_BASE_URL``) or for Socket Mode.

    Raises:
        ManifestError: both or neither of ``url`` and ``socket_mode``, a bad ``url``, or a
            template that :func:`problems` rejects.
    """
    if (url is None) == (not socket_mode):
        raise ManifestError("give either --url https://… or --socket-mode")
    manifest = copy.deepcopy(template if template is not None else load_template())
    features = manifest.setdefault("features", {})
    settings = manifest.setdefault("settings", {})
    events = settings.get("event_subscriptions")
    interactivity = settings.get("interactivity")
    if socket_mode:
        for command in features.get("slash_commands") or []:
            command.pop("url", None)
        if events is not None:
            events.pop("request_url", None)
        if interactivity is not None:
            interactivity.pop("request_url", None)
            interactivity.pop("message_menu_options_url", None)
        settings["socket_mode_enabled"] = True
    else:
        endpoint = public_base_url(url or "") + EVENTS_PATH
        for command in features.get("slash_commands") or []:
            command["url"] = endpoint
        if events is not None:
            events["request_url"] = endpoint
        if interactivity is not None:
            interactivity["request_url"] = endpoint
            if "message_menu_options_url" in interactivity:
                interactivity["message_menu_options_url"] = endpoint
        settings["socket_mode_enabled"] = False
    found = problems(manifest)
    if found:
        raise ManifestError("; ".join(found))
    return manifest


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def problems(manifest: Manifest) -> list[str]:
    """What Slack would reject in ``manifest`` (structure, required fields, limits); ``[]`` if none.

    Checks: ``_metadata.major_version`` 1; ``display_information.name`` (≤ 35) and description
    (≤ 140); bot user display name (≤ 80); each slash command starts with ``/`` (≤ 32) and has a
    description, and a ``url`` unless Socket Mode is on; bot scopes and bot events are lists of
    strings; request URLs are https and present unless Socket Mode is on.
    """
    found: list[str] = []
    socket_mode = bool((manifest.get("settings") or {}).get("socket_mode_enabled"))
    if (manifest.get("_metadata") or {}).get("major_version") != 1:
        found.append("_metadata.major_version must be 1")
    info = manifest.get("display_information") or {}
    if not _text(info.get("name"), NAME_MAX):
        found.append(f"display_information.name must be 1 to {NAME_MAX} characters")
    if "description" in info and not _text(info["description"], DESCRIPTION_MAX):
        found.append(f"display_information.description must be 1 to {DESCRIPTION_MAX} characters")
    features = manifest.get("features") or {}
    if not _text((features.get("bot_user") or {}).get("display_name"), DISPLAY_NAME_MAX):
        found.append(f"features.bot_user.display_name must be 1 to {DISPLAY_NAME_MAX} characters")
    urls: list[tuple[str, Any]] = []
    for index, command in enumerate(features.get("slash_commands") or []):
        name = command.get("command")
        if not (_text(name, COMMAND_MAX) and name.startswith("/")):
            found.append(f"features.slash_commands[{index}].command must start with / and be ≤ {COMMAND_MAX} chars")
        if not _text(command.get("description"), 2000):
            found.append(f"features.slash_commands[{index}].description is required")
        if not socket_mode:
            urls.append((f"features.slash_commands[{index}].url", command.get("url")))
    scopes = ((manifest.get("oauth_config") or {}).get("scopes") or {}).get("bot")
    if not (isinstance(scopes, list) and all(isinstance(s, str) for s in scopes)):
        found.append("oauth_config.scopes.bot must be a list of scope names")
    settings = manifest.get("settings") or {}
    events = settings.get("event_subscriptions")
    if events is not None:
        bot_events = events.get("bot_events")
        if not (isinstance(bot_events, list) and all(isinstance(e, str) for e in bot_events)):
            found.append("settings.event_subscriptions.bot_events must be a list of event names")
        if not socket_mode:
            urls.append(("settings.event_subscriptions.request_url", events.get("request_url")))
    interactivity = settings.get("interactivity")
    if interactivity is not None and interactivity.get("is_enabled") and not socket_mode:
        urls.append(("settings.interactivity.request_url", interactivity.get("request_url")))
        if "message_menu_options_url" in interactivity:
            urls.append(("settings.interactivity.message_menu_options_url", interactivity["message_menu_options_url"]))
    for where, value in urls:
        if not (isinstance(value, str) and value.startswith("https://")):
            found.append(f"{where} must be an https:// URL")
    return found


def to_text(manifest: Manifest, fmt: str = "yaml") -> str:
    """``manifest`` as YAML (keys in template order) or JSON; Slack's manifest editor takes either."""
    if fmt == "json":
        return json.dumps(manifest, indent=2) + "\n"
    return yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
