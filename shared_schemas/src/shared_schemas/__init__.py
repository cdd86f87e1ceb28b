"""The contract between the Users Service and the Timeline Service.

This package is the only code both services import: the events they exchange over
Kafka, the topic names, the wire codec, and the id/time/cursor helpers whose formats
both sides must agree on.
"""
