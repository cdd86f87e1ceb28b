"""A timeline item as bytes: the exact JSON the API returns for a tweet, so a page is
assembled by joining cached bytes, never by decoding and re-encoding tweets."""

from __future__ import annotations

import msgspec

from shared_schemas.internal_api import TweetItem

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(TweetItem)


def encode(item: TweetItem) -> bytes:
    return _encoder.encode(item)


def decode(raw: bytes) -> TweetItem:
    return _decoder.decode(raw)
