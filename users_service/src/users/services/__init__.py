"""Use cases: each runs one request inside the transaction(s) of the shard(s) it touches."""
