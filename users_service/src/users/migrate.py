"""Apply the Alembic migrations to every physical database: `python -m users.migrate`.

The databases are the catalog's (database 0's shard_databases) once it exists, and
USERS_SHARD_DSNS before: a stack's first migration writes that list and its map into
the catalog (migration 0005); databases added later come through `users.shards`."""

from __future__ import annotations

import asyncio
import logging

from alembic import command
from alembic.config import Config

from shared_schemas import logs
from users import settings as settings_module
from users.adapters import catalog

log = logging.getLogger("users.migrate")


def layout_of(settings: settings_module.Settings) -> catalog.Layout:
    found = asyncio.run(catalog.read_dsn(settings.shard_dsns[0]))
    if found is None:
        return catalog.initial(settings.shard_dsns, settings.replica_dsns)
    unknown = [dsn for dsn in settings.shard_dsns if dsn not in found.dsns.values()]
    if unknown:
        log.warning(
            "USERS_SHARD_DSNS names databases the catalog does not: add them with python -m users.shards add-database",
            extra={"unknown": len(unknown)},
        )
    return found


def migrate_database(layout: catalog.Layout, database_id: int, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", "users:migrations")
    # The migration scripts need to know which database they run on: seed rows go to
    # the logical shards it holds, and database 0 carries the catalog.
    config.attributes.update(
        url=layout.dsns[database_id],
        database_id=database_id,
        owned=layout.map.logicals_of(database_id),
        layout=layout,
    )
    log.info("migrating shard database", extra={"shard": database_id, "revision": revision})
    command.upgrade(config, revision)


def migrate_all(settings: settings_module.Settings) -> catalog.Layout:
    layout = layout_of(settings)
    for database_id in sorted(layout.dsns):
        migrate_database(layout, database_id)
    return layout


def main() -> None:
    settings = settings_module.load()
    logs.configure(settings.log_level)
    layout = migrate_all(settings)
    log.info("all shards migrated", extra={"shards": len(layout.dsns)})


if __name__ == "__main__":
    main()
