"""The fan-out worker: a Kafka consumer group that turns events into feeds."""
