"""Use cases: fan-out of events into feeds, and reading a timeline page."""
