"""Property-based tests of the IAM rules in bot.rules, against the rules as AWS documents them.

Oracles: IAM's own patterns, written as regular expressions with the ``regex`` module (which,
unlike ``re``, understands ``\\p{L}``), applied independently of the code under test.
"""

from __future__ import annotations

import string
import unicodedata

import pytest
import regex
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.domain.models import Tag
from bot.domain.quotas import AccountQuotas, groups_quota_error, policies_quota_error
from bot.domain.rules import (
    IAM_PASSWORD_SYMBOLS,
    PASSWORD_MAX,
    PasswordPolicy,
    custom_password_error,
    generate_password,
    suggest_user_name,
    user_name_error,
    user_names_error,
)
from bot.domain.tags import format_tags, parse_tags, tag_char_allowed

# IAM CreateUser: UserName [\w+=,.@-]+ (ASCII word characters), 1-64.
IAM_USER_NAME = regex.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")
# IAM Tag: key and value characters.
IAM_TAG_CHAR = regex.compile(r"[\p{L}\p{Z}\p{N}_.:/=+\-@]")
NAME_CHARS = string.ascii_letters + string.digits + "_+=,.@-"

user_names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=64)
# What the wizard accepts: IAM's set less the comma the credentials CSV cannot carry.
csv_safe_names = st.text(alphabet=NAME_CHARS.replace(",", ""), min_size=1, max_size=64)
policies = st.builds(
    PasswordPolicy,
    minimum_length=st.integers(6, 128),
    require_symbols=st.booleans(),
    require_numbers=st.booleans(),
    require_uppercase=st.booleans(),
    require_lowercase=st.booleans(),
    min_classes=st.sampled_from([0, 3]),
    is_default=st.booleans(),
)


# -- user names ---------------------------------------------------------------------------------


@given(st.text(max_size=80))
def test_user_name_error_agrees_with_iams_pattern(name: str) -> None:
    assert (user_name_error(name) is None) == bool(IAM_USER_NAME.fullmatch(name))


@given(user_names)
def test_every_name_iam_allows_is_accepted(name: str) -> None:
    assert user_name_error(name) is None


@given(st.lists(csv_safe_names, min_size=1, max_size=10, unique_by=str.lower))
def test_names_unique_ignoring_case_pass_and_any_case_twin_fails(names: list[str]) -> None:
    assert user_names_error(names, len(names), existing_lower=[]) is None
    twin = names[0].swapcase() if names[0].swapcase() != names[0] else names[0]
    error = user_names_error([*names, twin], len(names) + 1, existing_lower=[])
    assert error is not None and "same IAM user name" in error


@given(st.lists(csv_safe_names, min_size=1, max_size=10, unique_by=str.lower), st.integers(0, 9))
def test_a_name_iam_holds_in_any_case_is_refused(names: list[str], index: int) -> None:
    taken = names[index % len(names)]
    error = user_names_error(names, len(names), existing_lower=[taken.upper().lower()])
    assert error is not None and "already exists" in error
    spelled = user_names_error(names, len(names), existing_lower={taken: taken.swapcase()})
    assert spelled is not None and f"“{taken}” already exists" in spelled
    if taken.swapcase() != taken:
        assert f"spelled “{taken.swapcase()}”" in spelled


@given(st.lists(csv_safe_names, min_size=1, max_size=10, unique_by=str.lower), st.integers(0, 9), csv_safe_names)
def test_a_comma_in_any_name_is_refused_with_the_reason(names: list[str], index: int, tail: str) -> None:
    """IAM allows "," in user names; the credentials CSV (console layout, split on plain commas
    by `aws configure import`) cannot carry it."""
    names = list(names)
    names[index % len(names)] = f"ana,{tail}"[:64]
    assume(len({n.lower() for n in names}) == len(names))
    error = user_names_error(names, len(names), existing_lower=[])
    assert error is not None and "comma" in error and "aws configure import" in error


@given(st.lists(csv_safe_names, min_size=1, max_size=10, unique_by=str.lower), st.integers(0, 9))
def test_a_name_an_open_request_will_create_is_refused(names: list[str], index: int) -> None:
    taken = names[index % len(names)]
    error = user_names_error(names, len(names), existing_lower=[], requested_lower={taken.lower(): "R-ABCDEFGH"})
    assert error is not None and "already requested in R-ABCDEFGH" in error


@given(st.lists(csv_safe_names, min_size=1, max_size=10, unique_by=str.lower), st.integers(1, 10))
def test_as_many_names_as_recipients(names: list[str], recipients: int) -> None:
    assume(recipients != len(names))
    error = user_names_error(names, recipients, existing_lower=[])
    assert error is not None and f"{recipients} recipient" in error


@given(st.one_of(st.none(), st.emails(), st.text(max_size=100)), st.sets(user_names.map(str.lower), max_size=20))
def test_suggested_names_are_valid_new_and_distinct(email: str | None, taken: set[str]) -> None:
    before = set(taken)
    first = suggest_user_name(email, "u0fallback", taken)
    second = suggest_user_name(email, "u0fallback", taken)
    for name in (first, second):
        assert IAM_USER_NAME.fullmatch(name), name
        assert "," not in name, name  # the credentials CSV cannot carry it
        assert name.lower() not in before
    assert first.lower() != second.lower()


def test_suggested_name_is_the_email_local_part_made_valid() -> None:
    taken: set[str] = {"nina.newhire"}
    assert suggest_user_name("José Ñ+x@example.com", "u", set()) == "JoseN+x"
    assert suggest_user_name("nina.newhire@example.com", "u", taken) == "nina.newhire2"
    assert suggest_user_name(None, "U0ABC", set()) == "U0ABC"


# -- passwords ----------------------------------------------------------------------------------


@settings(max_examples=300)
@given(policies)
def test_generated_passwords_meet_every_policy_and_the_csv_rule(policy: PasswordPolicy) -> None:
    password = generate_password(policy)
    assert len(password) == min(max(policy.minimum_length, 20), PASSWORD_MAX)
    assert any(c.isupper() for c in password) and any(c.islower() for c in password)
    assert any(c.isdigit() for c in password) and any(c in IAM_PASSWORD_SYMBOLS for c in password)
    assert all(c in string.ascii_letters + string.digits or c in IAM_PASSWORD_SYMBOLS for c in password)
    assert not set(password) & set(",\"'")
    assert custom_password_error(password, policy) is None


def test_generated_passwords_differ() -> None:
    assert len({generate_password(PasswordPolicy()) for _ in range(200)}) == 200


printable_latin1 = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), min_size=1, max_size=128)


@given(printable_latin1, st.sampled_from([",", '"']))
def test_a_comma_or_quote_is_always_refused(password: str, bad: str) -> None:
    candidate = (password + bad)[-PASSWORD_MAX:]
    error = custom_password_error(candidate, PasswordPolicy(minimum_length=6, min_classes=0, is_default=False))
    assert error is not None and "comma" in error


@given(policies, printable_latin1)
def test_custom_password_verdict_matches_the_policy(policy: PasswordPolicy, password: str) -> None:
    classes = {
        "upper": any("A" <= c <= "Z" for c in password),
        "lower": any("a" <= c <= "z" for c in password),
        "digit": any(c.isascii() and c.isdigit() for c in password),
        "symbol": any(c in "!@#$%^&*()_+-=[]{}|'" for c in password),
    }
    expected_ok = (
        not set(password) & set(',"')
        and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in password)  # Latin-1's control characters
        and len(password) >= policy.minimum_length
        and (classes["upper"] or not policy.require_uppercase)
        and (classes["lower"] or not policy.require_lowercase)
        and (classes["digit"] or not policy.require_numbers)
        and (classes["symbol"] or not policy.require_symbols)
        and sum(classes.values()) >= policy.min_classes
    )
    assert (custom_password_error(password, policy) is None) == expected_ok


@pytest.mark.parametrize("control", ["\t", "\n", "\r", "\r\n", "\x7f", "\x85", "\x9f"])
def test_a_control_character_is_refused_though_iam_allows_some(control: str) -> None:
    """IAM allows tab, CR and LF (and U+0080-U+009F) in a password; the CSV row would break."""
    error = custom_password_error(f"Abcdef{control}gh12!", PasswordPolicy())
    assert error is not None and "control character" in error and control not in error


def test_aws_default_policy_wants_eight_characters_and_three_classes() -> None:
    default = PasswordPolicy()
    assert "at least 8" in (custom_password_error("Ab1!", default) or "")
    assert "3 of" in (custom_password_error("abcdefgh12", default) or "")
    assert custom_password_error("abcdefGH12", default) is None


def test_password_outside_latin1_or_too_long_is_refused() -> None:
    policy = PasswordPolicy(minimum_length=6, min_classes=0)
    assert "characters IAM does not allow" in (custom_password_error("Passwörd€1", policy) or "")
    assert "at most 128" in (custom_password_error("a" * 129, policy) or "")


# -- tags -----------------------------------------------------------------------------------------

# Characters assigned in the Unicode version of this Python's unicodedata: the regex module may
# know a newer Unicode version, whose new letters this Python cannot classify yet.
assigned = st.characters(codec="utf-8").filter(lambda c: unicodedata.category(c) != "Cn")
# Line separators (\p{Zl}, \p{Zp}) are valid in tags but end a line of the field, so a tag
# holding one cannot be typed there: leave them out of what the field round-trips. Drawn from a
# precomputed list (planes 0-2), which generates far faster than filtering random characters.
TAG_CHARS = [
    chr(c)
    for c in range(0x30000)
    if unicodedata.category(chr(c)) != "Cn" and IAM_TAG_CHAR.fullmatch(chr(c)) and len(f"a{chr(c)}b".splitlines()) == 1
]
tag_alphabet = st.one_of(
    st.sampled_from(string.ascii_letters + string.digits + " _.:/=+-@"), st.sampled_from(TAG_CHARS)
)


@settings(max_examples=500)
@given(assigned)
def test_tag_alphabet_is_iams(ch: str) -> None:
    assert tag_char_allowed(ch) == bool(IAM_TAG_CHAR.fullmatch(ch))


def _clean(text: str) -> str:
    return text.strip()


tag_keys = (
    st.text(alphabet=tag_alphabet.filter(lambda c: c != "="), min_size=1, max_size=128)
    .map(_clean)
    .filter(lambda k: len(k) > 0 and not k.casefold().startswith(("aws:", "iam-user-bot:")))
)
tag_values = st.text(alphabet=tag_alphabet, max_size=256).map(_clean)
# Unique as the rule compares keys (upper-cased, then casefolded: ı/I and ß/SS are one key).
valid_tags = st.lists(
    st.builds(Tag, key=tag_keys, value=tag_values), max_size=47, unique_by=lambda t: t.key.upper().casefold()
)


@settings(max_examples=200)
@given(valid_tags)
def test_valid_tags_round_trip(tags: list[Tag]) -> None:
    result = parse_tags(format_tags(tags), bot_tag_count=3)
    assert result.error is None
    assert list(result.tags) == tags


@given(valid_tags.map(lambda tags: tags[:5]), st.sampled_from(["aws:", "AWS:", "Aws:", "aWs:"]))
def test_aws_prefix_is_refused_in_any_case(tags: list[Tag], prefix: str) -> None:
    text = format_tags(tags) + f"\n{prefix}thing=x"
    error = parse_tags(text).error
    assert error is not None and "reserved" in error


def _case_twin_is_a_key(key: str) -> bool:
    # "İ".swapcase() is "i" + a combining dot, which is no tag character: such keys have no twin.
    twin = key.swapcase()
    return twin != key and len(twin) <= 128 and all(IAM_TAG_CHAR.fullmatch(c) for c in twin)


@given(tag_keys.filter(_case_twin_is_a_key))
def test_keys_differing_only_in_case_are_duplicates(key: str) -> None:
    error = parse_tags(f"{key}=1\n{key.swapcase()}=2").error
    assert error is not None and "same key" in error


@given(st.integers(48, 60))
def test_at_most_fifty_tags_counting_the_bots(count: int) -> None:
    text = "\n".join(f"k{i}=v" for i in range(count))
    error = parse_tags(text, bot_tag_count=3).error
    assert error is not None and "at most 47" in error
    assert parse_tags("\n".join(f"k{i}=v" for i in range(47)), bot_tag_count=3).error is None


def test_tag_errors_name_the_line_and_the_rule() -> None:
    assert "Line 2" in (parse_tags("a=1\nno equals sign").error or "")
    assert "no key" in (parse_tags("=value").error or "")
    assert "1 to 128" in (parse_tags("k" * 129 + "=v").error or "")
    assert "0 to 256" in (parse_tags("k=" + "v" * 257).error or "")
    assert "'#'" in (parse_tags("cost#center=1").error or "")
    assert "reserved" in (parse_tags("iam-user-bot:request-id=R-1").error or "")
    parsed = parse_tags("  team = data platform \n\nurl=https://x.example/a=b\nempty=")
    assert parsed.tags == (Tag(key="team", value="data platform"), Tag(key="url", value="https://x.example/a=b"),
                           Tag(key="empty", value=""))  # fmt: skip


# -- quotas ---------------------------------------------------------------------------------------


@given(st.integers(0, 25), st.integers(0, 3), st.integers(10, 20))
def test_policy_quota_counts_the_bots_own_policies(chosen: int, added: int, quota: int) -> None:
    quotas = AccountQuotas(attached_policies_per_user=quota)
    error = policies_quota_error(chosen, added, quotas)
    assert (error is None) == (chosen + added <= quota)
    if error and added:
        assert f"{added} the bot attaches" in error


@given(st.integers(0, 15))
def test_groups_quota(count: int) -> None:
    assert (groups_quota_error(count, AccountQuotas()) is None) == (count <= 10)


def test_quotas_from_account_summary() -> None:
    quotas = AccountQuotas.from_summary({"AttachedPoliciesPerUserQuota": 20, "GroupsPerUserQuota": 10, "Users": 3})
    assert quotas == AccountQuotas(attached_policies_per_user=20, groups_per_user=10)
    assert AccountQuotas.from_summary({}) == AccountQuotas()


@pytest.mark.parametrize(("first", "second"), [("ı", "I"), ("straße", "STRASSE"), ("Team", "tEAM")])
def test_case_twins_found_by_hypothesis_are_duplicates(first: str, second: str) -> None:
    # "ı".lower() is itself while "I".lower() is "i": a lower()-only comparison let both through.
    error = parse_tags(f"{first}=1\n{second}=2").error
    assert error is not None and "same key" in error
