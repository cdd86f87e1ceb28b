"""Event <-> bytes. One encoder and decoder per process: msgspec's are reusable and fast."""

from __future__ import annotations

import msgspec

from shared_schemas.events import Event

# No event comes near this: a tweet is at most 280 code points (1,120 bytes of UTF-8,
# 3,360 if every one were escaped as a surrogate pair) beside a few ids and a name.
# Anything larger is not an event of this contract, and is refused before decoding.
MAX_EVENT_BYTES = 16 * 1024

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


class Undecodable(ValueError):
    """Bytes that are no event of this contract, and never will be: retrying cannot
    help, so a consumer parks them (the dead-letter topic) and moves on."""


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(raw: bytes | None) -> Event:
    """The event in `raw`; Undecodable for anything else: no value (a tombstone), too
    large, not JSON, not UTF-8, an unknown type, missing or mistyped fields."""
    if raw is None:
        raise Undecodable("no value (a tombstone)")
    if len(raw) > MAX_EVENT_BYTES:
        raise Undecodable(f"{len(raw)} bytes, larger than any event ({MAX_EVENT_BYTES})")
    try:
        return _decoder.decode(raw)
    except Exception as exc:
        raise Undecodable(f"undecodable event: {exc!r}") from exc
