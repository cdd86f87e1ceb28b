"""The outbox relay: publishes each shard's outbox to Kafka, in commit order."""
