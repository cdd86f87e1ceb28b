"""I/O behind small interfaces: PostgreSQL shards, Kafka."""
