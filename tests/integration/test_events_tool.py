"""`make events TOPIC=...`: the project's own topic tail shows an event as readable JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx

from tests.support import GATEWAY, unique_name


def test_the_tail_prints_the_tweet_a_request_just_caused() -> None:
    tail = subprocess.Popen(
        [sys.executable, "-m", "timeline.tools.events", "tail", "tweets.v1", "--idle-seconds", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(tail.stdout), daemon=True)
    try:
        assert "tailing tweets.v1" in tail.stderr.readline()  # positioned at the end: ready
        reader.start()
        with httpx.Client(base_url=GATEWAY) as api:
            author = api.post("/api/v1/users", json={"username": unique_name()}).json()["user_id"]
            tweet = api.post("/api/v1/tweet", headers={"X-User-ID": author}, json={"text": "seen in the tail"}).json()
        deadline = time.monotonic() + 15
        while not any(tweet["tweet_id"] in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        tail.terminate()
        tail.wait(timeout=10)
    shown = [json.loads(line) for line in lines if tweet["tweet_id"] in line]
    assert shown, f"the tail printed {len(lines)} lines, none with the new tweet"
    assert shown[0]["key"] == author
    assert shown[0]["event"]["type"] == "tweet.created" and shown[0]["event"]["text"] == "seen in the tail"
