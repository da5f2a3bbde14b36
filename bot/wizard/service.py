"""The request wizard: which view comes next, where the draft lives, when the request is filed.

details → permissions → tags → review, each moved on with ``response_action: update`` (the
view keeps its id, so the draft is stored under it and a random token that the next view
carries in ``private_metadata``: :meth:`bot.storage.base.Store.put_draft`; the token keeps two
submissions of one view id apart, and the key also needs the submitting user to match). The
draft never holds a plaintext secret: a custom password is sealed (:mod:`bot.credentials.sealing`) as
soon as the details view is submitted. Every decision reads IAM at submission, in one round of
calls that do not grow with the account (:class:`~bot.aws.live.LiveIam`: a few ``GetUser`` per
name, a ``GetGroup`` or ``GetPolicy`` per entity, ``GetAccountPasswordPolicy``), plus the few
calls that expand "copy from user"; at 100 ms per IAM call a submission is acked in well under
Slack's 3 s (``BENCHMARKS.md``). The catalog only supplies typeahead, names and quotas.

The request is filed only when the review view is submitted, after the whole draft is
checked again against IAM (it may have changed meanwhile); a problem sends the requester back
to the view to fix, with the reason shown. Nothing is stored or created for an invalid
submission, nor when IAM does not answer.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError
from slack_sdk.models.views import View

from bot.aws.catalog import Catalog
from bot.aws.clients import IamError
from bot.aws.iam import IamGateway
from bot.aws.live import Found, LiveIam, Wanted
from bot.credentials.sealing import PasswordSealer, SealError
from bot.domain.models import AccessType, OnboardingRequest, PasswordMode, RequestForm
from bot.domain.quotas import AccountQuotas
from bot.domain.rules import MAX_RECIPIENTS, PasswordPolicy, suggest_user_name
from bot.domain.states import OPEN_STATUSES
from bot.slack.view_state import selected_users, selected_value, selected_values, ticked
from bot.storage.base import Store
from bot.wizard import review, views
from bot.wizard.draft import (
    DETAILS,
    PERMISSIONS,
    REVIEW,
    TAGS,
    Draft,
    ViewResult,
    preview_plan,
)
from bot.wizard.forms import (
    copy_source_errors,
    parse_details,
    parse_permissions,
    parse_review,
    parse_tags_view,
    recheck,
)

log = logging.getLogger(__name__)

DRAFT_TOKEN_BYTES = 12
FILED_SUFFIX = "/filed"  # the draft key under which a filed request's id is kept for the work after the ack
EXPIRED_NOTICE = "This form was open too long (or was started elsewhere), so it starts again. Sorry!"


class AccountLookup:
    """The :class:`bot.wizard.draft.Lookup` the wizard checks against: IAM now (:class:`LiveIam`),
    helped by the catalog (the spelling it last saw of a user name is asked for as well; the
    per-user quotas; which ARN a long policy option value stands for), plus the user names of
    requests still open in the store (pending, approved or provisioning)."""

    def __init__(
        self, catalog: Catalog, store: Store, slack_user: Callable[[str], Mapping[str, Any] | None], live: LiveIam
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.slack_user = slack_user
        self.live = live

    @property
    def quotas(self) -> AccountQuotas:
        """Per-user quotas (``GetAccountSummary``) as of the catalog's last refresh: they change
        only by a request to AWS, and provisioning reads them again before the first step."""
        return self.catalog.quotas

    def confirm(self, wanted: Wanted) -> Found:
        """:meth:`LiveIam.confirm`, also asking for the catalog's spelling of each user name."""
        names = [*wanted.user_names, *([wanted.source_user] if wanted.source_user else [])]
        known = {name.lower(): spelled for name in names if (spelled := self.catalog.user_named(name))}
        return self.live.confirm(replace(wanted, known=known))

    def policy_arn_for_value(self, value: str) -> str | None:
        """The ARN a policy option's value stands for: the value itself when it is an ARN (up to
        150 characters), else the catalog's policy of that key; None when unknown."""
        if policy := self.catalog.policy_for_value(value):
            return policy.arn
        return value if value.startswith("arn:") else None

    def requested_names_lower(self) -> dict[str, str]:
        """Lower-cased user name → id of the open request that will create it (one indexed read)."""
        names: dict[str, str] = {}
        for request in self.store.requests_where(statuses=OPEN_STATUSES, limit=10_000):
            names.update({name.lower(): request.id for name in request.form.user_names})
        return names


@dataclass
class WizardAnswer:
    """What to ack a submission with: ``errors`` (``response_action: errors``), a next ``view``
    (``response_action: update``), or the filed ``request`` (close the modal)."""

    errors: dict[str, str] = field(default_factory=dict)
    view: View | None = None
    request: OnboardingRequest | None = None


class Wizard:
    """Runs the wizard's submissions.

    Args:
        store: where drafts are kept between views (by view id).
        catalog: the in-memory copy of IAM the review's names and preview read (never a decision).
        live: what every check reads: IAM now, in calls that do not grow with the account.
        iam: used only to expand "copy from user" (:meth:`IamGateway.user_permissions`).
        sealer: seals a custom password the moment it arrives.
        file: stores a finished form as a pending request (:meth:`bot.approval.service.Approvals.file`).
        slack_user: a recipient's ``users.info`` object, cached (``Messenger.user_info``).
    """

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        live: LiveIam,
        iam: IamGateway,
        sealer: PasswordSealer,
        file: Callable[[str, RequestForm], OnboardingRequest],
        slack_user: Callable[[str], Mapping[str, Any] | None],
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.iam = iam
        self.sealer = sealer
        self.file = file
        self.lookup = AccountLookup(catalog, store, slack_user, live)

    # -- drafts ----------------------------------------------------------------------------------

    def _load(self, key: str, user_id: str) -> Draft | None:
        text = self.store.get_draft(key, user_id)
        if text is None:
            return None
        try:
            return Draft.model_validate_json(text)
        except ValidationError:
            log.warning("unreadable wizard draft dropped", extra={"slack_user": user_id})
            return None

    def _save(self, key: str, user_id: str, draft: Draft) -> None:
        self.store.put_draft(key, user_id, draft.model_dump_json())

    # -- views -----------------------------------------------------------------------------------

    def policy_label(self, arn: str) -> str:
        """A policy's name for people (the ARN's last part when the catalog does not know it)."""
        policy = self.catalog.policy_for_arn(arn)
        return policy.name if policy else arn.rsplit("/", 1)[-1]

    def view_for(self, step: str, draft: Draft, user_id: str, notice: str | None = None, token: str = "") -> View:
        """The view of ``step`` filled from ``draft``, with an optional warning on top; ``token``
        (the draft's key part) goes into its ``private_metadata``."""
        if step == DETAILS:
            view = views.details_view(draft, notice=notice)
        elif step == PERMISSIONS:
            view = views.permissions_view(draft, self.catalog.policy_for_arn, notice=notice)
        elif step == TAGS:
            view = views.tags_view(draft, notice=notice)
        else:
            steps = preview_plan(draft, user_id, self.catalog.account_id, self.catalog.password_policy)
            view = review.review_view(draft, steps, self.policy_label, notice=notice)
        if token:
            view.private_metadata = views.with_draft_token(view.private_metadata or "{}", token)
        return view

    def back(self, user_id: str, view: Mapping[str, Any], to_step: str) -> View | None:
        """The earlier view ``to_step`` filled from the draft (the **Back** button), or None when
        there is no such step before the current one or no draft of ``user_id`` (nothing to show).
        What was typed in the current view and not submitted is not kept, as in the console."""
        meta = views.read_metadata(view.get("private_metadata"))
        order = list(views.STEP_TITLES)
        if to_step not in order or order.index(to_step) >= order.index(meta["step"]) or not meta.get("draft"):
            return None
        key = f"{view.get('id') or ''}/{meta['draft']}"
        draft = self._load(key, user_id)
        return None if draft is None else self.view_after(to_step, draft, user_id, key)

    # -- submissions -----------------------------------------------------------------------------

    def submit(self, user_id: str, view: Mapping[str, Any]) -> WizardAnswer:
        """Handle the ``view_submission`` of any wizard view.

        Args:
            user_id: the Slack user who submitted.
            view: the payload's ``view`` (``id``, ``private_metadata``, ``state.values``).
        """
        meta = views.read_metadata(view.get("private_metadata"))
        step = meta["step"]
        token = meta.get("draft") or secrets.token_urlsafe(DRAFT_TOKEN_BYTES)
        key = f"{view.get('id') or ''}/{token}"
        values = (view.get("state") or {}).get("values") or {}
        draft = self._load(key, user_id) if meta.get("draft") else None
        if step != DETAILS and (draft is None or DETAILS not in draft.done):
            return WizardAnswer(view=self.view_for(DETAILS, Draft(), user_id, EXPIRED_NOTICE))
        draft = draft or Draft()
        if step == DETAILS:
            return self._details(key, user_id, values, draft)
        if step == PERMISSIONS:
            return self._permissions(key, user_id, values, draft)
        if step == TAGS:
            return self._next(key, user_id, parse_tags_view(values, draft), REVIEW)
        return self._review(key, user_id, values, draft)

    def view_after(self, step: str, draft: Draft, user_id: str, key: str, notice: str | None = None) -> View:
        """:meth:`view_for` carrying the token of draft ``key``."""
        return self.view_for(step, draft, user_id, notice, token=key.rpartition("/")[2])

    def _next(self, key: str, user_id: str, result: ViewResult, next_step: str) -> WizardAnswer:
        if result.draft is None:
            return WizardAnswer(errors=result.errors)
        self._save(key, user_id, result.draft)
        return WizardAnswer(view=self.view_after(next_step, result.draft, user_id, key))

    def _details(self, key: str, user_id: str, values: Any, draft: Draft) -> WizardAnswer:
        # Each recipient is looked up in Slack before this ack (users.info, usually cached by the
        # name suggestion); ten cache misses one after another could eat Slack's 3 s, so in parallel.
        recipients = selected_users(values, "recipients")[:MAX_RECIPIENTS]
        if recipients:
            with ThreadPoolExecutor(max_workers=len(recipients)) as pool:
                list(pool.map(self.lookup.slack_user, recipients))
        try:
            result = parse_details(values, draft, self.lookup)
        except IamError as error:
            return WizardAnswer(errors={"user_names": unchecked(error)})
        if result.draft is not None and result.password is not None:
            sealed = self.sealer.seal(result.password, user_id)
            result = ViewResult(draft=result.draft.model_copy(update={"custom_password_sealed": sealed}))
        return self._next(key, user_id, result, PERMISSIONS)

    def _permissions(self, key: str, user_id: str, values: Any, draft: Draft) -> WizardAnswer:
        try:
            result = parse_permissions(values, draft, self.lookup)
        except IamError as error:
            return WizardAnswer(errors={"permission_mode": unchecked(error)})
        if result.draft is not None and result.draft.copy_from_user:
            source_name = result.draft.copy_from_user
            try:
                # Four calls for one user (GetUser and three lists), all at once: inside the 3 s ack.
                source = self.lookup.live.user_permissions(source_name)
            except IamError as error:
                message = (
                    f"IAM has no user named “{source_name}” any more; pick another."
                    if error.code == "NoSuchEntity"
                    else f"Could not read {source_name}'s permissions from IAM ({error.code}); try again."
                )
                return WizardAnswer(errors={"copy_from_user": message})
            policy = result.password_policy or PasswordPolicy()
            if errors := copy_source_errors(result.draft, source, self.lookup.quotas, policy):
                return WizardAnswer(errors=errors)
            result = ViewResult(draft=result.draft.model_copy(update={"copy_source": source}))
        return self._next(key, user_id, result, TAGS)

    def _review(self, key: str, user_id: str, values: Any, draft: Draft) -> WizardAnswer:
        result = parse_review(values, draft)
        if result.draft is None:
            return WizardAnswer(errors=result.errors)
        draft = result.draft
        missing = [s for s in (DETAILS, PERMISSIONS, TAGS) if s not in draft.done]
        if missing:
            return WizardAnswer(view=self.view_after(missing[0], draft, user_id, key, "Please fill in this step."))
        # Claim the draft before the last checks (of concurrent submissions only one gets past); a way
        # back puts it back only after the claim, or one sent back after another filed lets a third file.
        if not self.store.delete_draft(key):
            return WizardAnswer(view=views.message_view("This request was already submitted."))
        try:
            if (sent_back := self._recheck(key, user_id, draft)) is not None:
                return sent_back
        except Exception:
            self._save(key, user_id, draft)
            raise
        request = self.file(user_id, draft.form())
        # What the work after the ack (announcing it) finds from the same submission payload.
        self.store.put_draft(f"{key}{FILED_SUFFIX}", user_id, request.id)
        return WizardAnswer(request=request)

    def _recheck(self, key: str, user_id: str, draft: Draft) -> WizardAnswer | None:
        """Open the custom password and check the claimed ``draft`` against IAM again: None when it
        may be filed, else the answer sending the requester back, with the draft put back."""
        password = None
        if draft.custom_password_sealed:
            try:
                password = self.sealer.open(draft.custom_password_sealed, user_id)
            except SealError:
                draft = draft.model_copy(update={"custom_password_sealed": None})
                self._save(key, user_id, draft)
                return WizardAnswer(
                    view=self.view_after(DETAILS, draft, user_id, key, "Please enter the custom password again.")
                )
        try:
            problem = recheck(draft, self.lookup, password)
        except IamError as error:
            self._save(key, user_id, draft)
            return WizardAnswer(errors={"justification": unchecked(error)})
        if problem is None:
            return None
        step, message = problem
        self._save(key, user_id, draft)
        return WizardAnswer(view=self.view_after(step, draft, user_id, key, f"IAM changed meanwhile: {message}"))

    def filed_request(self, user_id: str, view: Mapping[str, Any]) -> OnboardingRequest | None:
        """The request the submission of ``view`` by ``user_id`` filed, or None (it filed none).

        The ack of the last view files the request; the slow work after it (posting it to the
        approvers) runs apart (a lazy listener, on AWS Lambda another invocation) and finds it here
        from the same payload, once: a second call (Slack delivering the submission again) gets None.
        """
        token = views.read_metadata(view.get("private_metadata")).get("draft")
        if not token:
            return None
        key = f"{view.get('id') or ''}/{token}{FILED_SUFFIX}"
        request_id = self.store.get_draft(key, user_id)
        # Taken once: a repeated delivery of the same submission must not announce it again.
        if not request_id or not self.store.delete_draft(key):
            return None
        return self.store.get_request(request_id)


def unchecked(error: IamError) -> str:
    """A field error for a check IAM would not answer (throttled, refused): nothing is filed."""
    return f"I could not check this with IAM just now ({error.code}); nothing was saved. Try again in a moment."


# -- suggested user names ---------------------------------------------------------------------


def draft_from_details_state(values: Mapping[str, Any]) -> Draft:
    """What the details view shows right now (from a ``block_actions`` payload's state), so a
    re-rendered view keeps it. Unknown values are left out rather than refused: this is
    display, not validation."""
    access = frozenset(
        AccessType(v) for v in selected_values(values, "access_types") if v in {"programmatic", "console"}
    )
    mode_value = selected_value(values, "password_mode")
    return Draft(
        recipients=tuple(selected_users(values, "recipients")),
        access_types=access,
        password_mode=PasswordMode(mode_value)
        if mode_value in {"autogenerated", "custom"}
        else PasswordMode.AUTOGENERATED,
        require_reset=ticked(values, "require_reset") if "require_reset" in values else True,
    )


def suggestion_view(
    view: Mapping[str, Any], recipients: Sequence[str], emails: Mapping[str, str | None], taken_lower: set[str]
) -> View | None:
    """The details view with user names suggested for ``recipients``, or None to leave it be.

    Suggestions (:func:`bot.domain.rules.suggest_user_name`) come from each person's e-mail local
    part, made IAM-valid and unique (within the request and against ``taken_lower``, the
    catalog's users). They replace the field only while it is empty or still holds the
    previous suggestion, so a name the requester typed is never overwritten.

    Args:
        view: the ``view`` of the ``block_actions`` payload (``private_metadata``, ``state``).
        emails: Slack user id → e-mail (None when the profile has none).
    """
    values = (view.get("state") or {}).get("values") or {}
    meta = views.read_metadata(view.get("private_metadata"))
    state = next(iter((values.get("user_names") or {}).values()), {})
    current = (state.get("value") or "").strip()
    block = next((b for b in view.get("blocks") or [] if b.get("block_id") == "user_names"), {})
    action_id = (block.get("element") or {}).get("action_id", "user_names")
    if current and current != meta.get("suggested", "").strip():
        return None
    taken = set(taken_lower)
    names = [suggest_user_name(emails.get(user), user.lower(), taken) for user in recipients]
    text = "\n".join(names)
    if text == current:
        return None
    # A new action_id makes Slack show initial_value instead of what the input held.
    new_action = "user_names_suggested" if action_id == "user_names" else "user_names"
    shown = views.details_view(
        draft_from_details_state(values), user_names_text=text, user_names_action=new_action, suggested=text
    )
    if token := meta.get("draft"):
        shown.private_metadata = views.with_draft_token(shown.private_metadata or "{}", token)
    return shown
