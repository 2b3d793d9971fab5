"""Alembic's environment: run on the connection store/schema.py gives (never from an ini file)."""

from alembic import context

from packettotal.store.schema import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata,
                  render_as_batch=True)  # SQLite alters a table by copying it
with context.begin_transaction():
    context.run_migrations()
