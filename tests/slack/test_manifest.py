"""The Slack app manifest asks for exactly what the code uses: scopes, events, commands. No more, no fewer.

"What the code uses" is derived from the code itself: every Slack Web API method called in
``bot/`` and ``handlers/`` (``client.chat_postMessage(...)``, ``say(...)``, ``api_call("...")``),
mapped to its scope by :data:`METHOD_SCOPES`, and every listener the handlers register with Bolt,
recorded by calling ``handlers.register`` on a recording app. A new Web API call without its scope
in the manifest, a scope nobody uses, an unknown method, or a listener without its event or
command in the manifest fails here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from slack_sdk import WebClient

import handlers
from bot.slack import manifest

ROOT = Path(__file__).resolve().parents[2]
# Code that runs inside the bot; bot/sandbox is the fake Slack and the test harness, not the bot.
SCANNED = [p for d in ("bot", "handlers") for p in sorted((ROOT / d).rglob("*.py")) if "sandbox" not in p.parts]

# Bot-token scope each Web API method needs (Slack's method reference pages, "Required scopes").
# An empty set: the method needs no scope (views.* use the trigger or the app's own surfaces).
METHOD_SCOPES: dict[str, set[str]] = {
    "auth_test": set(),
    "apps_connections_open": set(),  # the app-level token's connections:write, not a bot scope
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_delete": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_getPermalink": set(),
    "conversations_open": {"im:write"},
    "conversations_info": {"channels:read", "groups:read"},
    "conversations_members": {"channels:read", "groups:read"},
    "views_open": set(),
    "views_push": set(),
    "views_update": set(),
    "views_publish": set(),
    "users_info": {"users:read"},
    "users_lookupByEmail": {"users:read.email"},
    "usergroups_list": {"usergroups:read"},
    "usergroups_users_list": {"usergroups:read"},
    "reactions_add": {"reactions:write"},
}
# Scopes that a method needs only when the code reads a certain field of its answer: users.info
# returns profile.email only with users:read.email.
FIELD_SCOPES: dict[tuple[str, str], set[str]] = {
    ("users_info", "email"): {"users:read.email"},
}
# Bolt's listener utilities that call the Web API for the listener.
UTILITY_METHODS = {"say": "chat_postMessage"}
# Event subscriptions each Bolt event listener needs. The bot answers messages only in its DMs
# (handlers/events.py ignores any channel_type but "im"), so "message" means message.im.
EVENT_SUBSCRIPTIONS: dict[str, set[str]] = {
    "message": {"message.im"},
    "app_home_opened": {"app_home_opened"},
    "app_mention": {"app_mention"},
    "user_change": {"user_change"},
}
# Scopes each event subscription needs (Slack's event reference pages).
EVENT_SCOPES: dict[str, set[str]] = {
    "message.im": {"im:history"},
    "app_home_opened": set(),
    "app_mention": {"app_mentions:read"},
    "user_change": {"users:read"},  # a member's profile changed, or their account was deactivated
}
API_METHODS = {name for name in vars(WebClient) if not name.startswith("_")}


def called_methods(source: str) -> set[str]:
    """Web API methods ``source`` calls: ``x.chat_postMessage(…)``, ``say(…)``, ``x.api_call("chat.update")``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in API_METHODS:
            found.add(func.attr)
        elif isinstance(func, ast.Attribute) and func.attr == "api_call" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value.replace(".", "_"))
        elif isinstance(func, ast.Name) and func.id in UTILITY_METHODS:
            found.add(UTILITY_METHODS[func.id])
    return found


def read_fields(source: str) -> set[str]:
    """Keys ``source`` reads from answers: ``x.get("email")`` and ``x["email"]``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        key = None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
        ):
            key = node.args[0]
        elif isinstance(node, ast.Subscript):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            found.add(key.value)
    return found


def field_scopes(source: str) -> set[str]:
    """Scopes from :data:`FIELD_SCOPES` for the methods ``source`` calls and the fields it reads."""
    methods, fields = called_methods(source), read_fields(source)
    return set().union(*(s for (m, f), s in FIELD_SCOPES.items() if m in methods and f in fields))


def scopes_for(methods: Iterable[str]) -> set[str]:
    unknown = sorted(m for m in methods if m not in METHOD_SCOPES)
    assert not unknown, f"add the scopes of {unknown} to METHOD_SCOPES (and to manifest.yml if needed)"
    return set().union(*(METHOD_SCOPES[m] for m in methods)) if methods else set()


class RecordingApp:
    """Stands in for ``slack_bolt.App`` in ``handlers.register``: records each registration."""

    def __init__(self) -> None:
        self.registered: list[tuple[str, Any]] = []

    def __getattr__(self, kind: str):  # app.command(...), app.event(...), app.action(...), app.use(...)
        def register(*args: Any, **kwargs: Any):
            self.registered.append((kind, args[0] if args else kwargs))
            return lambda function=None, *more, **options: function

        return register

    def of(self, *kinds: str) -> list[Any]:
        return [what for kind, what in self.registered if kind in kinds]


@pytest.fixture(scope="module")
def registered() -> RecordingApp:
    app = RecordingApp()
    handlers.register(app, mock.MagicMock(name="workflow"))  # type: ignore[arg-type]
    return app


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return manifest.load_template()


def test_the_scan_sees_calls_and_fails_on_unknown_methods() -> None:
    source = (
        "def f(client, say):\n    client.users_info(user='U1')\n    say(text='hi')\n    c.api_call('chat.update')\n"
    )
    assert called_methods(source) == {"users_info", "chat_postMessage", "chat_update"}
    assert scopes_for(called_methods(source)) == {"users:read", "chat:write"}
    email = "def f(client):\n    return client.users_info(user='U1')['user']['profile'].get('email')\n"
    assert field_scopes(email) == {"users:read.email"}
    assert field_scopes("def f(client):\n    return client.users_info(user='U1')['user']['name']\n") == set()
    with pytest.raises(AssertionError, match="files_upload_v2"):
        scopes_for(called_methods("client.files_upload_v2(file='x')"))


def test_manifest_scopes_are_exactly_what_the_code_uses(registered: RecordingApp, template: dict) -> None:
    methods = set().union(*(called_methods(p.read_text()) for p in SCANNED))
    assert "chat_postMessage" in methods and "views_open" in methods  # the scan really reads the code
    # Fields are matched across the whole code: an answer fetched in one module (the messenger's
    # cached users.info) is often read in another (the handler that suggests names from e-mails).
    needed = scopes_for(methods) | field_scopes("\n".join(p.read_text() for p in SCANNED))
    events = {e if isinstance(e, str) else e.get("type") for e in registered.of("event")}
    events |= {"message" for _ in registered.of("message")}
    subscriptions = set().union(*(EVENT_SUBSCRIPTIONS[e] for e in events))
    needed |= set().union(*(EVENT_SCOPES[s] for s in subscriptions))
    if registered.of("command", "shortcut", "global_shortcut", "message_shortcut"):
        needed.add("commands")
    assert sorted(template["oauth_config"]["scopes"]["bot"]) == sorted(needed)


def test_manifest_events_and_commands_are_exactly_the_registered_listeners(
    registered: RecordingApp, template: dict
) -> None:
    events = {e if isinstance(e, str) else e.get("type") for e in registered.of("event")}
    events |= {"message" for _ in registered.of("message")}
    subscriptions = set().union(*(EVENT_SUBSCRIPTIONS[e] for e in events))
    assert sorted(template["settings"]["event_subscriptions"]["bot_events"]) == sorted(subscriptions)
    commands = {c["command"] for c in template["features"]["slash_commands"]}
    assert commands == set(registered.of("command"))
    # Buttons, modals and options menus need interactivity; options menus need their URL.
    interactivity = template["settings"]["interactivity"]
    assert interactivity["is_enabled"] is bool(registered.of("action", "view", "options"))
    assert ("message_menu_options_url" in interactivity) is bool(registered.of("options"))
    # DMs to the bot need the Messages tab; the Home tab is on iff the code publishes a Home view.
    app_home = template["features"]["app_home"]
    assert app_home["messages_tab_enabled"] is ("message.im" in subscriptions)
    assert app_home["messages_tab_read_only_enabled"] is False
    home_published = any("views_publish" in called_methods(p.read_text()) for p in SCANNED)
    assert app_home["home_tab_enabled"] is home_published


def test_http_manifest_points_every_url_at_slack_events() -> None:
    filled = manifest.render(url="https://bot.acme.org/iam/")
    endpoint = "https://bot.acme.org/iam/slack/events"
    assert [c["url"] for c in filled["features"]["slash_commands"]] == [endpoint]
    assert filled["settings"]["event_subscriptions"]["request_url"] == endpoint
    assert filled["settings"]["interactivity"]["request_url"] == endpoint
    assert filled["settings"]["interactivity"]["message_menu_options_url"] == endpoint
    assert filled["settings"]["socket_mode_enabled"] is False
    assert manifest.PLACEHOLDER not in json.dumps(filled)
    assert manifest.problems(filled) == []


def test_socket_mode_manifest_has_no_urls() -> None:
    filled = manifest.render(socket_mode=True)
    assert filled["settings"]["socket_mode_enabled"] is True
    assert "http" not in json.dumps({k: v for k, v in filled.items() if k != "display_information"})
    assert manifest.problems(filled) == []


@pytest.mark.parametrize(
    ("url", "complaint"),
    [("http://bot.acme.org", "https://"), ("https://bot.acme.org/?x=1", "without"), ("bot.acme.org", "https://")],
)
def test_bad_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(manifest.ManifestError, match=complaint):
        manifest.render(url=url)


def test_broken_templates_are_caught(template: dict) -> None:
    broken = json.loads(json.dumps(template))
    broken["display_information"]["name"] = "x" * 36
    broken["features"]["slash_commands"][0]["command"] = "iam-user"
    broken["oauth_config"]["scopes"]["bot"] = "chat:write"
    found = manifest.problems(manifest.render(socket_mode=True, template=template) | {"_metadata": {}})
    assert found == ["_metadata.major_version must be 1"]
    with pytest.raises(manifest.ManifestError) as raised:
        manifest.render(url="https://bot.acme.org", template=broken)
    for part in ("display_information.name", "slash_commands[0].command", "scopes.bot"):
        assert part in str(raised.value)


@pytest.mark.e2e
def test_cli_prints_yaml_and_json_that_parse_back() -> None:
    run = [sys.executable, "-m", "bot.cli", "manifest"]
    as_yaml = subprocess.run([*run, "--url", "https://bot.acme.org"], capture_output=True, text=True, check=True)
    as_json = subprocess.run([*run, "--socket-mode", "--format", "json"], capture_output=True, text=True, check=True)
    assert yaml.safe_load(as_yaml.stdout) == manifest.render(url="https://bot.acme.org")
    assert json.loads(as_json.stdout) == manifest.render(socket_mode=True)
    bad = subprocess.run([*run, "--url", "http://bot.acme.org"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1


def test_the_top_level_manifest_is_the_only_copy_in_the_source_tree() -> None:
    # The fixed layout keeps manifest.yml at the top (what a person pastes), a real file; wheels get a
    # copy made at build time (setup.py; tests/test_package.py checks the built wheel).
    assert (ROOT / "manifest.yml").is_file() and not (ROOT / "manifest.yml").is_symlink()
    assert not (ROOT / "bot" / "slack" / "manifest.yml").exists()
    assert manifest.template_text() == (ROOT / "manifest.yml").read_text()


def test_a_package_without_the_manifest_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # As a wheel built without setup.py's copy step would be (the FileNotFoundError traceback of old).
    from bot.ops.check_slack import check_scopes

    monkeypatch.setattr(manifest, "__file__", "/nowhere/bot/slack/manifest.py")
    with pytest.raises(manifest.ManifestError, match="missing from this installation"):
        manifest.load_template()
    line = check_scopes({"X-OAuth-Scopes": "chat:write"})
    assert not line.ok and line.render().startswith("FAIL slack scopes: the Slack app manifest is missing")
