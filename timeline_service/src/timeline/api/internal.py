"""The internal routes, for the Users Service only (the gateway never routes them):
tweets into, or out of, their authors' own homes as the POST or DELETE is answered, so
the author reads their own writes whatever the fan-out's lag (docs/decisions/0016). The
tweets come in batches: each POST's, and those of the POSTs that waited meanwhile (0021)."""

from __future__ import annotations

import uuid

from litestar import Controller, Router, delete, post
from litestar.handlers import HTTPRouteHandler

from shared_schemas.internal_api import OwnTweets
from timeline.services.fanout import Fanout


def own_writes(fanout: Fanout) -> Router:
    class OwnWrites(Controller):
        path = "/internal/homes"
        include_in_schema = False

        @post("/own-tweets", operation_id="internalOwnTweets", status_code=204)
        async def tweeted(self, data: OwnTweets) -> None:
            await fanout.own_tweets(data.tweets)

        @delete("/{user_id:uuid}/tweets/{tweet_id:uuid}", operation_id="internalOwnDelete", status_code=204)
        async def deleted(self, user_id: uuid.UUID, tweet_id: uuid.UUID) -> None:
            await fanout.own_delete(user_id, tweet_id)

    handlers: list[HTTPRouteHandler | type[Controller]] = [OwnWrites]
    return Router(path="/", route_handlers=handlers, include_in_schema=False)
