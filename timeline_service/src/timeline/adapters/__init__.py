"""I/O behind small interfaces: Redis feeds and tweet cache, the Users Service client."""
