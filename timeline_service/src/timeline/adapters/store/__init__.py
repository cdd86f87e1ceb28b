"""The read model's store on Redis (a single server or Redis Cluster): homes, celebrity
lists, the tweet cache, and the scripts that keep them. `RedisTimelineStore` implements
the port `timeline.services.ports.TimelineStore`; nothing else names a Redis key."""
