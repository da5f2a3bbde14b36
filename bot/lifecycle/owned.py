"""Whose users are whose: a person's bot-made IAM users, found through the store's requests (an
indexed read by recipient) and confirmed by the ``iam-user-bot:owner`` tag in IAM at that moment,
so a deleted user or one whose tag says otherwise is never listed or touched."""

from __future__ import annotations

from dataclasses import dataclass

from bot.aws.iam import IamGateway
from bot.domain.plan import MANAGED_TAG, OWNER_TAG
from bot.domain.states import RequestStatus
from bot.storage.base import Store

# Requests naming one person as a recipient, read at most (newest first): far above anyone's count.
OWNED_REQUESTS_MAX = 200


@dataclass
class OwnedUsers:
    """Finds a Slack user's bot-made IAM users."""

    store: Store
    iam: IamGateway

    def candidates(self, owner: str) -> list[str]:
        """User names that provisioned onboarding requests made for ``owner``, newest first (store
        only, no IAM call)."""
        names: dict[str, None] = {}
        for request in self.store.requests_for_recipient(owner, limit=OWNED_REQUESTS_MAX):
            if request.form.is_removal or request.status is not RequestStatus.PROVISIONED:
                continue
            pairs = zip(request.form.user_names, request.form.recipients, strict=True)
            names.update({name: None for name, who in pairs if who == owner})
        return list(names)

    def names(self, owner: str) -> list[str]:
        """``owner``'s bot-made users that exist now and carry ``iam-user-bot:owner=<owner>`` (one
        ``ListUserTags`` each).

        Raises:
            bot.aws.clients.IamError: IAM refused a read.
        """
        found = []
        for name in self.candidates(owner):
            tags = self.iam.tags_of(name)
            if tags is not None and tags.get(MANAGED_TAG) == "true" and tags.get(OWNER_TAG) == owner:
                found.append(name)
        return found
