"""Growing the fleet: moving logical shards between databases (python -m users.shards)."""
