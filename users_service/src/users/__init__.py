"""Users Service: the write model (users, follows, tweets) and its outbox relay."""
