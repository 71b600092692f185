"""Standard Webhooks signing: the official test vector, key rotation, freshness, tampering,
and secrets that are never quoted in errors."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.alerts.signing import DEFAULT_TOLERANCE, sign, verify, webhook_headers
from monitor.config.webhook_secrets import parse_secrets
from monitor.core.errors import ConfigError

# the test vector of the Standard Webhooks reference libraries (libraries/*/tests)
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# the reference libraries' "invalid signature": the vector with its last base64 digit changed
VECTOR_WRONG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="

NEW_KEY = bytes(range(32))
NEW_SECRET = "whsec_" + base64.b64encode(NEW_KEY).decode()


def vector_headers(signature: str = VECTOR_SIGNATURE) -> dict[str, str]:
    return {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": signature,
    }


def test_the_official_vector() -> None:
    secrets = parse_secrets(VECTOR_SECRET)
    assert secrets == (base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),)
    assert sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, secrets) == VECTOR_SIGNATURE


def test_the_vector_verifies_and_its_altered_signature_does_not() -> None:
    secrets = parse_secrets(VECTOR_SECRET)
    now = VECTOR_TIMESTAMP
    assert verify(vector_headers(), VECTOR_BODY, secrets, now=now)
    assert not verify(vector_headers(VECTOR_WRONG), VECTOR_BODY, secrets, now=now)


def test_webhook_headers() -> None:
    secrets = parse_secrets(VECTOR_SECRET)
    headers = webhook_headers(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, secrets)
    assert headers == {**vector_headers(), "content-type": "application/json"}


def test_rotation_signs_with_every_secret_and_either_verifies() -> None:
    secrets = parse_secrets(f"{NEW_SECRET}  {VECTOR_SECRET}")
    assert len(secrets) == 2
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, secrets)
    first, second = header.split(" ")
    assert second == VECTOR_SIGNATURE  # in the order configured
    assert first.startswith("v1,")
    assert first != second
    headers = vector_headers(header)
    now = VECTOR_TIMESTAMP
    # a receiver holding only the old key, or only the new one, accepts the message
    assert verify(headers, VECTOR_BODY, parse_secrets(VECTOR_SECRET), now=now)
    assert verify(headers, VECTOR_BODY, (NEW_KEY,), now=now)
    assert not verify(headers, VECTOR_BODY, (bytes(24),), now=now)


def test_verify_skips_other_versions_and_garbage() -> None:
    secrets = parse_secrets(VECTOR_SECRET)
    valid = VECTOR_SIGNATURE.split(",")[1]
    header = " ".join(
        [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            f"v2,{valid}",  # a valid digest under another version counts for nothing
            "v1,not base64!",
            "nocomma",
            VECTOR_SIGNATURE,
        ]
    )
    assert verify(vector_headers(header), VECTOR_BODY, secrets, now=VECTOR_TIMESTAMP)
    only_others = f"v2,{valid} v1a,{valid}"
    assert not verify(vector_headers(only_others), VECTOR_BODY, secrets, now=VECTOR_TIMESTAMP)


def test_header_names_are_case_insensitive() -> None:
    headers = {k.title(): v for k, v in vector_headers().items()}
    assert "Webhook-Signature" in headers
    secrets = parse_secrets(VECTOR_SECRET)
    assert verify(headers, VECTOR_BODY, secrets, now=VECTOR_TIMESTAMP)


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (0, True),
        (DEFAULT_TOLERANCE, True),
        (-DEFAULT_TOLERANCE, True),
        (DEFAULT_TOLERANCE + 1, False),  # too old: a replay
        (-DEFAULT_TOLERANCE - 1, False),  # from the future
    ],
)
def test_timestamp_tolerance(offset: int, ok: bool) -> None:
    secrets = parse_secrets(VECTOR_SECRET)
    now = VECTOR_TIMESTAMP + offset
    assert verify(vector_headers(), VECTOR_BODY, secrets, now=now) is ok


def test_tolerance_is_the_callers() -> None:
    secrets = parse_secrets(VECTOR_SECRET)
    now = VECTOR_TIMESTAMP + 60
    assert verify(vector_headers(), VECTOR_BODY, secrets, now=now, tolerance=60)
    assert not verify(vector_headers(), VECTOR_BODY, secrets, now=now, tolerance=59)


@pytest.mark.parametrize(
    "change",
    [
        "body",
        "timestamp",
        "id",
        "no id",
        "no timestamp",
        "no signature",
        "timestamp not a number",
        "id with a dot",
    ],
)
def test_tampering_is_rejected(change: str) -> None:
    secrets = parse_secrets(VECTOR_SECRET)
    headers, body = vector_headers(), VECTOR_BODY
    if change == "body":
        body = b'{"test": 2432232315}'
    elif change == "timestamp":
        headers["webhook-timestamp"] = str(VECTOR_TIMESTAMP + 1)  # within tolerance
    elif change == "id":
        headers["webhook-id"] = "msg_p5jXN8AQM9LWM0D4loKWxJel"
    elif change.startswith("no "):
        del headers["webhook-" + change.removeprefix("no ")]
    elif change == "timestamp not a number":
        headers["webhook-timestamp"] = "1614265330.0"
    else:
        headers["webhook-id"] = "msg.p5jXN8AQM9LWM0D4loKWxJek"
    assert not verify(headers, body, secrets, now=VECTOR_TIMESTAMP)


@given(
    body=st.binary(max_size=512),
    msg_id=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="."),
        min_size=1,
        max_size=40,
    ),
    timestamp=st.integers(min_value=0, max_value=2**40),
)
def test_what_is_signed_verifies(body: bytes, msg_id: str, timestamp: int) -> None:
    secrets = parse_secrets(f"{VECTOR_SECRET} {NEW_SECRET}")
    headers = webhook_headers(msg_id, timestamp, body, secrets)
    assert verify(headers, body, secrets, now=timestamp)
    assert not verify(headers, body + b" ", secrets, now=timestamp)


def test_unpadded_and_padded_secrets_are_the_same_key() -> None:
    key = bytes(range(100, 125))  # 25 bytes: base64 ends in '=='
    padded = base64.b64encode(key).decode()
    assert padded.endswith("==")
    assert parse_secrets("whsec_" + padded) == (key,)
    assert parse_secrets("whsec_" + padded.rstrip("=")) == (key,)


# each case: the setting, the part of it that must never show, what the message says
BAD_SECRETS = [
    ("", None, "empty"),
    ("   ", None, "empty"),
    ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
    ("whsec_MfKQ9r8GKYqr!wjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqr", "base64"),
    ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw_", "MfKQ9r8GKYqr", "base64"),  # url-safe alphabet
    ("whsec_", None, "base64"),
    ("whsec_c2hvcnRzZWNyZXQ=", "c2hvcnRzZWNyZXQ", "11 bytes"),  # too short
    ("whsec_" + base64.b64encode(bytes(65)).decode(), "AAAAAAAA", "65 bytes"),  # too long
    (f"{VECTOR_SECRET} whsec_zzz!", "MfKQ9r8GKYqr", "webhook secret 2 of 2"),
    (f"{VECTOR_SECRET} {VECTOR_SECRET}", "MfKQ9r8GKYqr", "twice"),
    ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwé", "MfKQ9r8GKYqr", "base64"),
]


@pytest.mark.parametrize(("text", "hidden", "says"), BAD_SECRETS)
def test_bad_secrets_are_named_never_quoted(text: str, hidden: str | None, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_secrets(text)
    error = info.value
    assert says in str(error)
    shown = f"{error!s} {error!r} {error.args!r}"
    if hidden is not None:
        assert hidden not in shown
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


def test_sign_refuses_ids_that_break_the_signed_content() -> None:
    secrets = parse_secrets(VECTOR_SECRET)
    for bad in ("", "msg.1", "msg 1", "msg\n1"):
        with pytest.raises(ValueError, match="webhook id"):
            sign(bad, VECTOR_TIMESTAMP, VECTOR_BODY, secrets)
    with pytest.raises(ValueError, match="at least one secret"):
        sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, ())
    with pytest.raises(ValueError, match="timestamp"):
        sign(VECTOR_ID, -1, VECTOR_BODY, secrets)
