"""HTTP entrypoint: GET /api/v1/timeline, health, readiness, metrics."""
