"""The internal routes for the Timeline Service: never routed by the gateway."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import Parameter

from shared_schemas.internal_api import (
    MAX_FOLLOWERS_PAGE,
    MAX_HOME_IDS,
    MAX_HOME_ITEMS,
    MAX_TWEETS_A_CALL,
    FirstFollowers,
    FirstFollowersRequest,
    FollowersPage,
    Following,
    HomeSource,
    HomeSources,
    HomeSourcesRequest,
    NewestTweets,
    NewestTweetsRequest,
    RecentTweetsRequest,
    Tweets,
    TweetsByIdsRequest,
    UserInfo,
)
from users.api.schemas import tweet_item, user_info
from users.domain.errors import NotFound
from users.services import accounts, graph_reads


def _home(found: graph_reads.HomeSource) -> HomeSource:
    return HomeSource(found.celebrities, found.tweet_ids, [tweet_item(t) for t in found.tweets])


def _page(ids: list[uuid.UUID], limit: int) -> FollowersPage:
    """A full page says where the next starts; a shorter one is the last."""
    return FollowersPage(user_ids=ids, next_after=ids[-1] if len(ids) == limit else None)


class InternalController(Controller):
    path = "/internal"
    tags = ("internal",)
    include_in_schema = False

    @get("/users/{user_id:uuid}", operation_id="internalUser")
    async def user(self, state: State, user_id: uuid.UUID) -> UserInfo:
        """A user with counts."""
        return user_info(await accounts.get_user(state.db, user_id))

    @get("/users/{user_id:uuid}/followers", operation_id="internalFollowers")
    async def followers(
        self,
        state: State,
        user_id: uuid.UUID,
        after: uuid.UUID | None = None,
        limit: int = Parameter(default=1000, ge=1, le=MAX_FOLLOWERS_PAGE),
    ) -> FollowersPage:
        """One page of a user's followers, ordered by id (for fan-out)."""
        return _page(await graph_reads.followers_page(state.db, user_id, after, limit), limit)

    @post("/followers/first-pages", operation_id="internalFirstFollowers", status_code=200)
    async def first_followers(self, state: State, data: FirstFollowersRequest) -> FirstFollowers:
        """The first page of followers of each user (a batch of fan-outs: docs/decisions/0021)."""
        found = await graph_reads.first_follower_pages(state.db, data.user_ids, data.limit)
        return FirstFollowers(pages=[None if ids is None else _page(ids, data.limit) for ids in found])

    @get("/users/{user_id:uuid}/following", operation_id="internalFollowing")
    async def following(self, state: State, user_id: uuid.UUID) -> Following:
        """A user and everyone they follow, with counts (for backfill, merge, rebuild)."""
        user, followees = await graph_reads.following(state.db, user_id)
        return Following(user=user_info(user), following=[user_info(u) for u in followees])

    @get("/users/{user_id:uuid}/home-source", operation_id="internalHomeSource")
    async def home_source(
        self,
        state: State,
        user_id: uuid.UUID,
        threshold: int = Parameter(ge=1),
        limit: int = Parameter(default=800, ge=1, le=MAX_HOME_IDS),
        items: int = Parameter(default=0, ge=0, le=MAX_HOME_ITEMS),
    ) -> HomeSource:
        """What a lost home is rebuilt from (a rebuild: docs/decisions/0018). Kept for
        Timeline Services older than POST /internal/home-sources (0021)."""
        (found,) = await graph_reads.home_sources(state.db, [graph_reads.HomeAsk(user_id, items)], limit, threshold)
        if found is None:
            raise NotFound("user not found")
        return _home(found)

    @post("/home-sources", operation_id="internalHomeSources", status_code=200)
    async def home_sources(self, state: State, data: HomeSourcesRequest) -> HomeSources:
        """What several lost homes are rebuilt from: the rebuilds that waited together
        (docs/decisions/0021); null for a user that does not exist."""
        asks = [graph_reads.HomeAsk(home.user_id, home.items) for home in data.homes]
        found = await graph_reads.home_sources(state.db, asks, data.limit, data.threshold)
        return HomeSources([None if source is None else _home(source) for source in found])

    @post("/tweets/recent", operation_id="internalRecentTweets", status_code=200)
    async def recent(self, state: State, data: RecentTweetsRequest) -> Tweets:
        """The newest tweets of a set of authors (or the oldest newer than `after`), newest first."""
        limit = max(1, min(data.limit, MAX_TWEETS_A_CALL))
        found = await graph_reads.recent_tweets(state.db, data.author_ids, data.before, limit, data.after)
        return Tweets(tweets=[tweet_item(t) for t in found])

    @post("/tweets/newest-each", operation_id="internalNewestEach", status_code=200)
    async def newest_each(self, state: State, data: NewestTweetsRequest) -> NewestTweets:
        """Each author's newest tweets, apart (the celebrity lists filled together)."""
        found = await graph_reads.newest_each(state.db, data.author_ids, data.limit)
        return NewestTweets(tweets=[None if tweets is None else [tweet_item(t) for t in tweets] for tweets in found])

    @post("/tweets/batch", operation_id="internalTweetsByIds", status_code=200)
    async def batch(self, state: State, data: TweetsByIdsRequest) -> Tweets:
        """The tweets among these ids that exist and are not deleted (for hydration)."""
        found = await graph_reads.tweets_by_ids(state.db, data.tweet_ids[:MAX_TWEETS_A_CALL])
        return Tweets(tweets=[tweet_item(t) for t in found])
