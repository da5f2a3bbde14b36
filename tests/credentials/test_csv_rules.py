"""Whatever the wizard accepts survives the credentials CSV, read by Python's csv and by
``aws configure import``'s plain-comma reading (tests.support.csv_readers), and what it refuses is
exactly what would break one of them."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.rules import PasswordPolicy, custom_password_error, generate_password, user_names_error
from tests.support.csv_readers import console_csv, read_like_aws_configure_import, read_with_python_csv

IAM_NAME_CHARS = string.ascii_letters + string.digits + "_+=,.@-"
ANY_POLICY = PasswordPolicy(minimum_length=6, min_classes=0, is_default=False)
CONSOLE_URL = "https://123456789012.signin.aws.amazon.com/console"

iam_names = st.text(alphabet=IAM_NAME_CHARS, min_size=1, max_size=64)  # CreateUser's pattern
# CreateLoginProfile's password alphabet: tab, LF, CR and U+0020-U+00FF, 1-128 characters.
iam_passwords = st.text(alphabet=st.sampled_from(["\t", "\n", "\r", *map(chr, range(0x20, 0x100))]), min_size=6)
access_key_ids = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16).map("AKIA".__add__)
secret_keys = st.text(alphabet=string.ascii_letters + string.digits + "/+", min_size=40, max_size=40)


def wizard_accepts(name: str, password: str) -> bool:
    name_ok = user_names_error([name], 1, existing_lower=[]) is None
    return name_ok and custom_password_error(password, ANY_POLICY) is None


@given(iam_names, iam_passwords.filter(lambda p: len(p) <= 128), access_key_ids, secret_keys)
def test_every_accepted_name_and_password_reads_back_both_ways(name: str, password: str, key: str, secret: str) -> None:
    row = {"user_name": name, "password": password, "access_key_id": key, "secret_access_key": secret,
           "console_url": CONSOLE_URL}  # fmt: skip
    text = console_csv(row)
    try:
        both_right = read_with_python_csv(text) == [row] and read_like_aws_configure_import(text) == [
            {"user_name": name, "access_key_id": key, "secret_access_key": secret}
        ]
    except (AssertionError, ValueError):
        both_right = False
    if wizard_accepts(name, password):
        assert both_right, "an accepted name or password breaks the credentials CSV"
    elif user_names_error([name], 1, existing_lower=[]) is not None:
        assert "," in name  # the only IAM-legal name refused is one that would shift the columns


@given(st.sampled_from([PasswordPolicy(), ANY_POLICY]), access_key_ids, secret_keys)
def test_generated_passwords_read_back_both_ways(policy: PasswordPolicy, key: str, secret: str) -> None:
    row = {"user_name": "nina.newhire", "password": generate_password(policy), "access_key_id": key,
           "secret_access_key": secret, "console_url": CONSOLE_URL}  # fmt: skip
    text = console_csv(row)
    assert read_with_python_csv(text) == [row]
    assert read_like_aws_configure_import(text)[0]["access_key_id"] == key


def test_the_comma_the_issue_found_would_have_shifted_both_readers() -> None:
    """``ana+ops=1,x.y@corp`` (legal in IAM): Python's csv reads six fields, and the importer
    takes the password for the access key id; the wizard now refuses the name."""
    row = {"user_name": "ana+ops=1,x.y@corp", "password": "Secret-Pass-1", "access_key_id": "AKIAABCDEFGHIJKLMNOP",
           "secret_access_key": "s" * 40, "console_url": CONSOLE_URL}  # fmt: skip
    text = console_csv(row)
    assert read_like_aws_configure_import(text)[0]["access_key_id"] == "Secret-Pass-1"
    try:
        read_with_python_csv(text)
    except AssertionError as error:
        assert "6 fields" in str(error)
    else:
        raise AssertionError("Python's csv read a shifted row without noticing")
    assert "comma" in (user_names_error([row["user_name"]], 1, existing_lower=[]) or "")
