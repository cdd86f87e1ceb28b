"""Opaque pagination cursors: "older than this tweet id", signed by the issuing service.

A cursor is the 16 bytes of a tweet id plus a truncated HMAC, base64url encoded. The
signature is what lets a service answer 400 to "a cursor the server did not issue"
instead of paging from an arbitrary, possibly forged, position. A refresh's cursor may
carry a few more ids after the first (what the client holds above that position: the
Timeline Service's timeline.domain.refresh), signed with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from collections.abc import Sequence

# 8 bytes of HMAC-SHA256: forging one takes ~2^64 guesses, and the token stays short
# enough (32 characters; a refresh's with 8 held ids, 203) for a query string.
_MAC_BYTES = 8
MAX_HELD = 8  # ids a cursor carries past its position, at most
_PAYLOAD_SIZES = frozenset(16 * (1 + n) for n in range(MAX_HELD + 1))


# Secrets anyone can read in this repository: the local stacks' defaults and the
# Kubernetes placeholders. With one of them, anyone can forge a cursor.
PUBLIC_SECRET_MARKERS = ("local-", "CHANGE-ME")


def check_secret(secret: str, name: str, local: bool) -> None:
    """Refuse to run with a public cursor secret, unless told this is a local stack."""
    if not local and (len(secret) < 16 or any(marker in secret for marker in PUBLIC_SECRET_MARKERS)):
        raise SystemExit(
            f"{name} is a public default or too short: set a secret of your own (16+ characters), "
            "or LOCAL_STACK=true on a local stack"
        )


class InvalidCursor(ValueError):
    """The token was not issued by this service (or was altered)."""


class CursorCodec:
    def __init__(self, secret: str) -> None:
        # The keyed state made once and copied per cursor: a page read signs one.
        self._keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def _mac(self, payload: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(payload)
        return mac.digest()[:_MAC_BYTES]

    def encode(self, older_than: uuid.UUID) -> str:
        return self.encode_ids(older_than.bytes)

    def encode_ids(self, position: bytes, held: Sequence[bytes] = ()) -> str:
        """A cursor of 16-byte ids: the position, then up to MAX_HELD held above it."""
        payload = position + b"".join(held[:MAX_HELD])
        return base64.urlsafe_b64encode(payload + self._mac(payload)).rstrip(b"=").decode()

    def decode(self, token: str) -> uuid.UUID:
        return self.decode_held(token)[0]

    def decode_held(self, token: str) -> tuple[uuid.UUID, tuple[bytes, ...]]:
        """The position, and the 16-byte ids a refresh's cursor says the client holds
        above it."""
        try:
            # validate=True: a character outside the alphabet is an error, not skipped.
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor("next_cursor is not a cursor this service issued") from exc
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if (
            len(payload) not in _PAYLOAD_SIZES
            or len(mac) != _MAC_BYTES
            or not hmac.compare_digest(mac, self._mac(payload))
        ):
            raise InvalidCursor("next_cursor is not a cursor this service issued")
        return uuid.UUID(bytes=payload[:16]), tuple(payload[i : i + 16] for i in range(16, len(payload), 16))


# The page size contract of every listing: `limit` is 1..100, 20 when absent.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_DIGITS = re.compile(r"[0-9]{1,3}")


def parse_limit(raw: str | None) -> int:
    """`limit` from a query string; ValueError (-> 400) unless an integer in 1..100."""
    if raw is None:
        return DEFAULT_LIMIT
    # ASCII digits only: str.isdigit() and int() also accept "٥" and "５".
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)
