"""moto's IAM made a closer stand-in for the lifecycle: what real IAM does and moto 5 does not.

Applied by :mod:`bot.sandbox.moto_serial` (the tests' and the demo's moto server) before it serves:

- **Service-specific credentials** (``CreateServiceSpecificCredential``,
  ``ListServiceSpecificCredentials``, ``DeleteServiceSpecificCredential``): moto has none, so a
  removal could never be shown to delete them.
- **DeleteUser refuses while anything is left** (``DeleteConflict``), as IAM does: a login profile,
  access keys, signing certificates, SSH public keys, service-specific credentials, MFA devices or
  group memberships (moto itself only checks policies). A removal that skipped a step would
  then fail here as it would in AWS.
- **A console sign-in** sets the user's ``PasswordLastUsed`` (moto never does):
  ``POST /iam-user-bot-sandbox/console-sign-in`` with form fields ``user`` and optionally ``at``
  (ISO-8601; default now). ``GetUser`` and ``ListUsers`` then report it.
- **Time passing for a user**: ``POST /iam-user-bot-sandbox/age`` with ``user`` and ``days`` moves
  every date IAM keeps of the user that many days back: its ``CreateDate`` (and its login
  profile's, which moto reports as the same), each access key's ``CreateDate`` and last use, and
  its ``PasswordLastUsed``. A test makes a key 80 days old this way, and keys made afterwards
  (a rotation's) are as new as in AWS.

Test scaffolding only: nothing here runs in the bot.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from moto.core.responses import ActionResult, EmptyResult
from moto.iam.exceptions import DeleteConflictException, NotFoundException
from moto.iam.models import IAMBackend, iam_backends
from moto.iam.responses import IamResponse

SIGN_IN_PATH = "/iam-user-bot-sandbox/console-sign-in"
AGE_PATH = "/iam-user-bot-sandbox/age"
DEFAULT_ACCOUNT = "123456789012"


def _credentials(backend: IAMBackend) -> dict[str, list[dict[str, Any]]]:
    """The service-specific credentials of ``backend``, by user name (kept on the backend)."""
    if not hasattr(backend, "_iam_user_bot_service_credentials"):
        backend._iam_user_bot_service_credentials = {}  # type: ignore[attr-defined]
    return backend._iam_user_bot_service_credentials  # type: ignore[attr-defined]


def create_service_specific_credential(self: IamResponse) -> ActionResult:
    user_name = self._get_param("UserName")
    service = self._get_param("ServiceName")
    user = self.backend.get_user(user_name)
    credential = {
        "CreateDate": datetime.now(UTC),
        "ServiceName": service,
        "ServiceUserName": f"{user.name}-at-{secrets.randbelow(10**12):012d}",
        "ServiceSpecificCredentialId": "ACCA" + "".join(secrets.choice(string.ascii_uppercase) for _ in range(17)),
        "UserName": user.name,
        "Status": "Active",
    }
    _credentials(self.backend).setdefault(user.name, []).append(credential)
    password = secrets.token_urlsafe(24)
    return ActionResult({"ServiceSpecificCredential": {**credential, "ServicePassword": password}})


def list_service_specific_credentials(self: IamResponse) -> ActionResult:
    user_name = self._get_param("UserName")
    user = self.backend.get_user(user_name)
    service = self._get_param("ServiceName")
    found = [c for c in _credentials(self.backend).get(user.name, []) if service in (None, c["ServiceName"])]
    return ActionResult({"ServiceSpecificCredentials": found})


def delete_service_specific_credential(self: IamResponse) -> ActionResult:
    user_name = self._get_param("UserName")
    credential_id = self._get_param("ServiceSpecificCredentialId")
    user = self.backend.get_user(user_name)
    held = _credentials(self.backend).get(user.name, [])
    kept = [c for c in held if c["ServiceSpecificCredentialId"] != credential_id]
    if len(kept) == len(held):
        raise NotFoundException(f"No such credential {credential_id}")
    _credentials(self.backend)[user.name] = kept
    return EmptyResult()


def what_blocks_delete(backend: IAMBackend, user_name: str) -> list[str]:
    """What IAM would refuse ``DeleteUser`` for (besides policies, which moto checks itself)."""
    user = backend.get_user(user_name)
    checks: Iterable[tuple[str, object]] = (
        ("login profile", user.password),
        ("access keys", user.access_keys),
        ("signing certificates", user.signing_certificates),
        ("SSH public keys", user.ssh_public_keys),
        ("service-specific credentials", _credentials(backend).get(user.name)),
        ("MFA devices", user.mfa_devices),
        ("groups", backend.get_groups_for_user(user.name)),
    )
    return [what for what, held in checks if held]


def _strict_delete_user(original: Callable[[IAMBackend, str], None]) -> Callable[[IAMBackend, str], None]:
    def delete_user(self: IAMBackend, user_name: str) -> None:
        if left := what_blocks_delete(self, user_name):
            raise DeleteConflictException(f"Cannot delete entity, must remove {', '.join(left)} first.")
        original(self, user_name)
        _credentials(self).pop(user_name, None)

    return delete_user


def _user_of(form: dict[str, list[str]]) -> Any:
    """The moto user the request's ``user`` field names, in any account, or None."""
    user_name = (form.get("user") or [""])[0]
    for account in (DEFAULT_ACCOUNT, *iam_backends.keys()):
        backend = iam_backends[account]["aws"]
        if user_name in backend.users:
            return backend.users[user_name]
    return None


def console_sign_in(form: dict[str, list[str]]) -> bool:
    """:data:`SIGN_IN_PATH`: the user signed in to the console (now, or at ``at``)."""
    user = _user_of(form)
    if user is None:
        return False
    user.password_last_used = datetime.fromisoformat(form["at"][0]) if form.get("at") else datetime.now(UTC)
    return True


def age(form: dict[str, list[str]]) -> bool:
    """:data:`AGE_PATH`: every date IAM keeps of the user moves ``days`` back."""
    user = _user_of(form)
    if user is None:
        return False
    delta = timedelta(days=float(form["days"][0]))
    user.create_date -= delta
    for key in user.access_keys:
        key.create_date -= delta
        if key.last_used is not None:
            key.last_used._timestamp -= delta
    if user.password_last_used is not None:
        user.password_last_used -= delta
    return True


ROUTES: dict[str, Callable[[dict[str, list[str]]], bool]] = {SIGN_IN_PATH: console_sign_in, AGE_PATH: age}


def with_sandbox_routes(app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI ``app`` plus :data:`ROUTES` (``POST``, form fields; 404 for an unknown user)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        route = ROUTES.get(environ.get("PATH_INFO", ""))
        if route is None or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(size).decode() if size else environ.get("QUERY_STRING", ""))
        found = route(form)
        status, body = ("200 OK", b'{"ok": true}') if found else ("404 Not Found", b'{"ok": false}')
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return wrapped


def install() -> None:
    """Patch moto's IAM once (idempotent)."""
    if getattr(IamResponse, "_iam_user_bot_patched", False):
        return
    IamResponse.create_service_specific_credential = create_service_specific_credential  # type: ignore[attr-defined]
    IamResponse.list_service_specific_credentials = list_service_specific_credentials  # type: ignore[attr-defined]
    IamResponse.delete_service_specific_credential = delete_service_specific_credential  # type: ignore[attr-defined]
    IAMBackend.delete_user = _strict_delete_user(IAMBackend.delete_user)  # type: ignore[method-assign]
    IamResponse._iam_user_bot_patched = True  # type: ignore[attr-defined]
