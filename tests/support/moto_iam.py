"""moto in-process with a handful of AWS managed policies (loading all ~1,300 costs 0.8 s a test)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
from moto import mock_aws
from moto.iam import models as moto_iam_models

AWS_MANAGED_NAMES = ("ReadOnlyAccess", "IAMUserChangePassword", "AdministratorAccess")
SOME_AWS_MANAGED = json.dumps(
    {
        name: document
        for name, document in json.loads(moto_iam_models.aws_managed_policies_data).items()
        if name in AWS_MANAGED_NAMES
    }
)


@contextlib.contextmanager
def mock_iam_with_some_aws_policies(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``mock_aws`` whose IAM knows :data:`AWS_MANAGED_NAMES` among the AWS managed policies."""
    monkeypatch.setattr(moto_iam_models, "aws_managed_policies_data", SOME_AWS_MANAGED)
    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        yield
