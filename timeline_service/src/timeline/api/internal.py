"""The internal routes, for the Users Service only (the gateway never routes them): a
tweet into, or out of, its author's own home as the POST or DELETE is answered, so the
author reads their own writes whatever the fan-out's lag (docs/decisions/0016)."""

from __future__ import annotations

import uuid

from litestar import Controller, Router, delete, put
from litestar.handlers import HTTPRouteHandler

from shared_schemas.internal_api import TweetItem
from timeline.domain.errors import Invalid
from timeline.services.fanout import Fanout


def own_writes(fanout: Fanout) -> Router:
    class OwnWrites(Controller):
        path = "/internal/homes/{user_id:uuid}/tweets"
        include_in_schema = False

        @put("/{tweet_id:uuid}", operation_id="internalOwnTweet", status_code=204)
        async def tweeted(self, user_id: uuid.UUID, tweet_id: uuid.UUID, data: TweetItem) -> None:
            if data.user_id != user_id or data.tweet_id != tweet_id:
                raise Invalid("the item is not this user's tweet")
            await fanout.own_tweet(data)

        @delete("/{tweet_id:uuid}", operation_id="internalOwnDelete", status_code=204)
        async def deleted(self, user_id: uuid.UUID, tweet_id: uuid.UUID) -> None:
            await fanout.own_delete(user_id, tweet_id)

    handlers: list[HTTPRouteHandler | type[Controller]] = [OwnWrites]
    return Router(path="/", route_handlers=handlers, include_in_schema=False)
