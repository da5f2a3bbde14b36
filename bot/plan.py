"""Turn an approved request into the ordered IAM steps that create its users. Pure: no I/O.

A plan holds names and ARNs only, never a secret: passwords and keys are made while the
steps run. Step order follows what IAM needs: the user first, then what hangs off it.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict

from bot.models import OnboardingRequest, Tag

# IAM: at most 50 tags per user; the bot adds its provenance tags to the requester's.
PROVENANCE_TAG_KEYS = ("iam-user-bot:request-id", "iam-user-bot:requested-by", "iam-user-bot:approved-by")


class StepKind(enum.StrEnum):
    """One IAM API call the plan needs, named after the call."""

    CREATE_USER = "create_user"
    CREATE_LOGIN_PROFILE = "create_login_profile"
    CREATE_ACCESS_KEY = "create_access_key"
    ADD_USER_TO_GROUP = "add_user_to_group"


class Step(BaseModel):
    """One IAM call for one user. ``target`` is the group name for group steps."""

    model_config = ConfigDict(frozen=True)

    kind: StepKind
    user_name: str
    target: str | None = None
    tags: tuple[Tag, ...] = ()
    password_reset_required: bool = False

    @property
    def label(self) -> str:
        """Short human text, for journals and progress lines."""
        suffix = f" → {self.target}" if self.target else ""
        return f"{self.kind.value} {self.user_name}{suffix}"


def provenance_tags(request: OnboardingRequest, approver: str) -> tuple[Tag, ...]:
    """Tags that tie an IAM user to the request that made it (request id, requester, approver)."""
    values = (request.id, request.requester, approver)
    return tuple(Tag(key=key, value=value) for key, value in zip(PROVENANCE_TAG_KEYS, values, strict=True))


def build_plan(request: OnboardingRequest, approver: str) -> list[Step]:
    """The IAM steps for every user of ``request``, user by user.

    Per user: ``create_user`` (with the requester's tags and the provenance tags), then
    ``create_login_profile`` when console access was asked for, ``create_access_key`` for
    programmatic access, and one ``add_user_to_group`` per group.
    """
    form = request.form
    tags = (*form.tags, *provenance_tags(request, approver))
    steps: list[Step] = []
    for user_name in form.user_names:
        steps.append(Step(kind=StepKind.CREATE_USER, user_name=user_name, tags=tags))
        if form.console:
            steps.append(
                Step(
                    kind=StepKind.CREATE_LOGIN_PROFILE,
                    user_name=user_name,
                    password_reset_required=form.require_reset,
                )
            )
        if form.programmatic:
            steps.append(Step(kind=StepKind.CREATE_ACCESS_KEY, user_name=user_name))
        steps.extend(Step(kind=StepKind.ADD_USER_TO_GROUP, user_name=user_name, target=group) for group in form.groups)
    return steps
