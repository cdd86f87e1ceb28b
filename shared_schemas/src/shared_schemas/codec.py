"""Event <-> bytes. One encoder and decoder per process: msgspec's are reusable and fast."""

from __future__ import annotations

import msgspec

from shared_schemas.events import Event

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(raw: bytes) -> Event:
    """Raises msgspec.ValidationError / DecodeError on anything that is not an Event."""
    return _decoder.decode(raw)
