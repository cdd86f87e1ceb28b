"""A client of the public API for the timeline tests: users, follows, tweets, pages."""

from __future__ import annotations

import httpx

from tests.support import unique_name


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def user(self) -> str:
        response = await self.http.post("/api/v1/users", json={"username": unique_name()})
        assert response.status_code == 201, response.text
        return response.json()["user_id"]

    async def follow(self, follower: str, followee: str) -> None:
        response = await self.http.post(
            "/api/v1/follow", headers={"X-User-ID": follower}, json={"follow_user_id": followee}
        )
        assert response.status_code == 201, response.text

    async def unfollow(self, follower: str, followee: str) -> None:
        response = await self.http.delete(f"/api/v1/follow/{followee}", headers={"X-User-ID": follower})
        assert response.status_code == 204, response.text

    async def tweet(self, author: str, text: str) -> str:
        response = await self.http.post("/api/v1/tweet", headers={"X-User-ID": author}, json={"text": text})
        assert response.status_code == 201, response.text
        return response.json()["tweet_id"]

    async def page(self, user: str, limit: int = 20, cursor: str | None = None) -> dict:
        params = {"limit": limit, **({"next_cursor": cursor} if cursor else {})}
        response = await self.http.get("/api/v1/timeline", headers={"X-User-ID": user}, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def ids(self, user: str, limit: int = 100) -> list[str]:
        return [t["tweet_id"] for t in (await self.page(user, limit))["tweets"]]

    async def all_ids(self, user: str, limit: int) -> list[str]:
        seen, cursor = [], None
        while True:
            page = await self.page(user, limit, cursor)
            seen += [t["tweet_id"] for t in page["tweets"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen
