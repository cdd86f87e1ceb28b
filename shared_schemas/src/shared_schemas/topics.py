"""Kafka topic names and partition counts: part of the contract, created by ops scripts.

Every event is keyed by the id of the user whose state changed (the author, the
follower), so one user's events stay in order on one partition.
"""

from __future__ import annotations

from typing import NamedTuple


class Topic(NamedTuple):
    name: str
    partitions: int


USERS = Topic("users.v1", 3)
FOLLOWS = Topic("follows.v1", 6)
TWEETS = Topic("tweets.v1", 6)
# Events the timeline worker gave up on after its retries, with the error and origin.
TIMELINE_DEAD_LETTER = Topic("timeline.deadletter.v1", 1)

ALL = (USERS, FOLLOWS, TWEETS, TIMELINE_DEAD_LETTER)
# What the timeline worker consumes.
TIMELINE_SOURCES = (USERS.name, FOLLOWS.name, TWEETS.name)
