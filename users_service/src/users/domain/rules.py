"""Validation of what users type: usernames and tweet text."""

from __future__ import annotations

import re
import unicodedata

from users.domain.errors import Invalid

USERNAME_RE = re.compile(r"[A-Za-z0-9_]{1,15}")
# Twitter's limit, counted in code points after NFC normalization.
MAX_TWEET_CODE_POINTS = 280
# NFC composes at most four code points into one (Greek ᾇ: α and three marks), so no
# text longer than this can be a valid tweet. Refusing it before normalizing bounds the
# cost of a request: normalization grows with the square of a run of combining marks,
# so a long run would hold the process (docs/benchmarks.md, "Hostile input").
MAX_TEXT_BEFORE_NFC = 4 * MAX_TWEET_CODE_POINTS


def check_username(username: str) -> str:
    if not USERNAME_RE.fullmatch(username):
        raise Invalid("username must be 1 to 15 characters of A-Z, a-z, 0-9 and _")
    return username


def username_key(username: str) -> str:
    """The case-insensitive identity of a name: `Alice` and `alice` are one name."""
    return username.lower()


def normalize_text(text: str) -> str:
    """NFC first, so 280 decomposed `é` (560 code points as sent) still fit."""
    if len(text) > MAX_TEXT_BEFORE_NFC:
        raise Invalid(f"text must be at most {MAX_TWEET_CODE_POINTS} characters")
    normalized = unicodedata.normalize("NFC", text)
    if "\x00" in normalized:
        # PostgreSQL text cannot hold NUL; no tweet needs one.
        raise Invalid("text must not contain the NUL character")
    if not normalized.strip():
        raise Invalid("text must not be empty or only whitespace")
    if len(normalized) > MAX_TWEET_CODE_POINTS:
        raise Invalid(f"text must be at most {MAX_TWEET_CODE_POINTS} characters")
    return normalized
