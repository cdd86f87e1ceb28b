"""The public routes (reached through the gateway): users, follow, tweets."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import Parameter

from shared_schemas.ids import iso_ms
from shared_schemas.internal_api import UserInfo
from users.api import schemas
from users.api.identity import CallerHeader, caller_id, page_params, path_id
from users.services import accounts, follows, tweets

Limit = Annotated[str | None, Parameter(query="limit", required=False)]
Cursor = Annotated[str | None, Parameter(query="next_cursor", required=False)]


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ("users",)

    @post("/", operation_id="createUser", status_code=201)
    async def create(self, state: State, data: schemas.CreateUser) -> schemas.NewUser:
        """Create a user; the username is unique without regard to case."""
        user = await accounts.create_user(state.db, data.username)
        return schemas.NewUser(user_id=user.user_id, username=user.username, created_at=iso_ms(user.created_at))

    @get("/{user_id:str}", operation_id="getUser")
    async def profile(self, state: State, user_id: str) -> UserInfo:
        """A user's public profile with follower and following counts."""
        user = await accounts.get_user(state.db, path_id(user_id, "user_id"))
        return schemas.user_info(user)

    @get("/{user_id:str}/tweets", operation_id="listUserTweets")
    async def user_tweets(
        self, state: State, user_id: str, limit: Limit = None, next_cursor: Cursor = None
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

    @post("/", operation_id="follow", status_code=201)
    async def follow(
        self, state: State, data: schemas.FollowRequest, x_user_id: CallerHeader = None
    ) -> Response[bytes]:
        """Follow a user (also 201 when already following)."""
        await follows.follow(state.db, caller_id(x_user_id), data.follow_user_id, state.max_following)
        return Response(b"", status_code=201)  # the contract has no body here, not even `null`

    @delete("/{user_id:str}", operation_id="unfollow", status_code=204)
    async def unfollow(self, state: State, user_id: str, x_user_id: CallerHeader = None) -> None:
        """Stop following a user (also 204 when not following)."""
        caller = caller_id(x_user_id)
        await follows.unfollow(state.db, caller, path_id(user_id, "user_id"))


class TweetController(Controller):
    path = "/api/v1/tweet"
    tags = ("tweets",)

    @post("/", operation_id="publishTweet", status_code=201)
    async def publish(
        self, state: State, data: schemas.PublishTweet, x_user_id: CallerHeader = None
    ) -> schemas.PublishedTweet:
        """Publish a tweet; a retry with the same idempotency_key returns the same tweet."""
        tweet_id, created_at = await tweets.publish(state.db, caller_id(x_user_id), data.text, data.idempotency_key)
        return schemas.PublishedTweet(tweet_id=tweet_id, created_at=iso_ms(created_at))

    @delete("/{tweet_id:str}", operation_id="deleteTweet", status_code=204)
    async def delete(self, state: State, tweet_id: str, x_user_id: CallerHeader = None) -> None:
        """Delete one of the caller's tweets; it leaves every timeline."""
        caller = caller_id(x_user_id)
        await tweets.delete(state.db, caller, path_id(tweet_id, "tweet_id"))
