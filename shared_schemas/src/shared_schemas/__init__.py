"""The contract between the Users Service and the Timeline Service.

This package is the only code both services import: the events they exchange over
Kafka, the topic names, the wire codec, the id/time/cursor helpers whose formats both
sides must agree on, the internal API's shapes; and the plumbing both run alike (JSON
logs and the request middleware, the heap settling, the coalescer of internal calls:
docs/decisions/0001).
"""
