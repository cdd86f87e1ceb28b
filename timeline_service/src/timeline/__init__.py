"""Timeline Service: the read model (fan-out worker, celebrity merge, GET /timeline)."""
