"""The public routes (reached through the gateway): users, follow, tweets."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, delete, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from shared_schemas.http_contract import CallerHeader, Limit, NextCursor, errors, id_param
from shared_schemas.ids import iso_ms
from shared_schemas.internal_api import UserInfo
from users.api import schemas
from users.api.identity import caller_id, page_params, path_id, tweet_path_id
from users.services import accounts, follows, tweets

UserId = Annotated[str, id_param("A user's id.")]
TweetId = Annotated[str, id_param("A tweet's id.")]
BAD_CALLER = "X-User-ID missing or not a UUID"
UNKNOWN_CALLER = "no user has the X-User-ID"


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ("users",)

    @post(
        "/",
        operation_id="createUser",
        status_code=201,
        responses=errors({400: "A bad username or body.", 409: "The username is taken (case aside)."}),
    )
    async def create(self, state: State, data: schemas.CreateUser) -> schemas.NewUser:
        """Create a user; the username is unique without regard to case."""
        user = await accounts.create_user(state.db, data.username)
        return schemas.NewUser(user_id=user.user_id, username=user.username, created_at=iso_ms(user.created_at))

    @get("/{user_id:str}", operation_id="getUser", responses=errors({400: "A bad id.", 404: "No such user."}))
    async def profile(self, state: State, user_id: UserId) -> UserInfo:
        """A user's public profile with follower and following counts."""
        user = await accounts.get_user(state.db, path_id(user_id, "user_id"))
        return schemas.user_info(user)

    @get(
        "/{user_id:str}/tweets",
        operation_id="listUserTweets",
        responses=errors({400: "A bad id, limit or cursor.", 404: "No such user."}),
    )
    async def user_tweets(
        self, state: State, user_id: UserId, limit: Limit = None, next_cursor: NextCursor = None
    ) -> schemas.TweetPage:
        """A user's own tweets, newest first, paged by cursor."""
        author = path_id(user_id, "user_id")
        size, before = page_params(state.cursors, limit, next_cursor)
        found = await tweets.list_by_author(state.db, author, before, size + 1)
        page = found[:size]
        cursor = state.cursors.encode(page[-1].tweet_id) if len(found) > size else None
        return schemas.TweetPage(tweets=[schemas.tweet_item(t) for t in page], next_cursor=cursor)


class FollowController(Controller):
    path = "/api/v1/follow"
    tags = ("follow",)

    @post(
        "/",
        operation_id="follow",
        status_code=201,
        responses={
            201: ResponseSpec(None, description="Following (also when already following); no body."),
            **errors(
                {
                    400: f"{BAD_CALLER}; a bad or missing follow_user_id; following oneself.",
                    404: "The caller or the user to follow does not exist.",
                    409: "The following limit is reached.",
                }
            ),
        },
    )
    async def follow(
        self, state: State, data: schemas.FollowRequest, x_user_id: CallerHeader = None
    ) -> Response[bytes]:
        """Follow a user (also 201 when already following)."""
        await follows.follow(state.db, caller_id(x_user_id), uuid.UUID(data.follow_user_id), state.max_following)
        return Response(b"", status_code=201)  # the contract has no body here, not even `null`

    @delete(
        "/{user_id:str}",
        operation_id="unfollow",
        status_code=204,
        responses=errors({400: f"{BAD_CALLER}; a bad id.", 404: UNKNOWN_CALLER}),
    )
    async def unfollow(self, state: State, user_id: UserId, x_user_id: CallerHeader = None) -> None:
        """Stop following a user (also 204 when not following)."""
        caller = caller_id(x_user_id)
        await follows.unfollow(state.db, caller, path_id(user_id, "user_id"))


class TweetController(Controller):
    path = "/api/v1/tweet"
    tags = ("tweets",)

    @post(
        "/",
        operation_id="publishTweet",
        status_code=201,
        responses=errors(
            {
                400: f"{BAD_CALLER}; bad text or body.",
                404: UNKNOWN_CALLER,
                409: "The idempotency_key was used for other text.",
            }
        ),
    )
    async def publish(
        self, state: State, data: schemas.PublishTweet, x_user_id: CallerHeader = None
    ) -> schemas.PublishedTweet:
        """Publish a tweet; a retry with the same idempotency_key returns the same tweet."""
        key = uuid.UUID(data.idempotency_key) if data.idempotency_key is not None else None
        tweet = await tweets.publish(state.db, caller_id(x_user_id), data.text, key)
        # Before the 201: the author's next read has it, whatever the fan-out's lag.
        await state.own_timeline.tweeted(schemas.tweet_item(tweet))
        return schemas.PublishedTweet(tweet_id=tweet.tweet_id, created_at=iso_ms(tweet.created_at))

    @delete(
        "/{tweet_id:str}",
        operation_id="deleteTweet",
        status_code=204,
        responses=errors(
            {400: BAD_CALLER, 404: "No such tweet of the caller's (a tweet_id that is no UUID names none)."}
        ),
    )
    async def delete(self, state: State, tweet_id: TweetId, x_user_id: CallerHeader = None) -> None:
        """Delete one of the caller's tweets; it leaves every timeline."""
        caller, tweet = caller_id(x_user_id), tweet_path_id(tweet_id)
        await tweets.delete(state.db, caller, tweet)
        await state.own_timeline.deleted(caller, tweet)
