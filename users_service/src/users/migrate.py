"""Apply the Alembic migrations to every physical shard: `python -m users.migrate`."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config

from users import logs
from users import settings as settings_module

log = logging.getLogger("users.migrate")


def migrate_all(settings: settings_module.Settings) -> None:
    for index, dsn in enumerate(settings.shard_dsns):
        config = Config()
        config.set_main_option("script_location", "users:migrations")
        # The migration scripts need to know which shard they run on (seed rows go to
        # the shard they hash to), so the shard map travels in the config.
        config.attributes.update(url=dsn, shard_index=index, shard_count=len(settings.shard_dsns))
        log.info("migrating shard", extra={"shard": index})
        command.upgrade(config, "head")


def main() -> None:
    settings = settings_module.load()
    logs.configure(settings.log_level)
    migrate_all(settings)
    log.info("all shards migrated", extra={"shards": len(settings.shard_dsns)})


if __name__ == "__main__":
    main()
