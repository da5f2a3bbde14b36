"""The users' life after onboarding: keys that age (rotation notices, the owner's **Rotate**,
enforcement), owners who leave (``user_change`` and the periodic ``users.info`` check), credentials
nobody uses (the approvers' digest), users who go (``/iam-user remove``: disable or delete, approved
like a request), and where people see it (``keys``, the App Home).

Below the approval stage (which starts an approved removal) and above credentials (which deliver a
rotated key's one-time link); the only IAM calls are :mod:`bot.aws`'s, the only Slack calls the
messenger's, every state change the store's compare-and-set (:mod:`bot.domain.states`).
"""
