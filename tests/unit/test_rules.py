import time
import unicodedata

import pytest

from users.domain.errors import Invalid
from users.domain.rules import check_username, normalize_text, username_key


@pytest.mark.parametrize("name", ["a", "alice_01", "A" * 15, "___"])
def test_valid_usernames(name: str) -> None:
    assert check_username(name) == name


@pytest.mark.parametrize("name", ["", "a" * 16, "al ice", "élan", "a-b", "a.b", "a\n"])
def test_invalid_usernames(name: str) -> None:
    with pytest.raises(Invalid):
        check_username(name)


def test_username_key_folds_case() -> None:
    assert username_key("Alice") == username_key("ALICE") == "alice"


def test_280_emoji_fit() -> None:
    assert len(normalize_text("😀" * 280)) == 280


def test_decomposed_text_counts_after_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "é") * 280
    assert len(decomposed) == 560
    assert normalize_text(decomposed) == "é" * 280


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "x" * 281])
def test_rejected_text(text: str) -> None:
    with pytest.raises(Invalid):
        normalize_text(text)


def test_nul_is_refused() -> None:
    with pytest.raises(Invalid):
        normalize_text("a\x00b")


def test_280_of_the_most_composed_characters_sent_decomposed_still_fit() -> None:
    greek = unicodedata.normalize("NFD", "\u1f87")  # ᾇ: α and three combining marks
    assert len(greek) == 4
    assert normalize_text(greek * 280) == "\u1f87" * 280


def test_a_text_too_long_to_be_a_tweet_is_refused_before_normalizing_cheaply() -> None:
    """60 KB of combining marks once cost most of a second of CPU in NFC; it is refused
    by its length first. CPU time, generously bounded: it was 0.9 s."""
    hostile = "a" + "\u0301\u0323" * 15000
    started = time.process_time()
    with pytest.raises(Invalid, match="at most 280"):
        normalize_text(hostile)
    assert time.process_time() - started < 0.05
