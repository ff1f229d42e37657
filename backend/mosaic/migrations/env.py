from alembic import context

from mosaic.models import Base

# The app hands over a live connection (see mosaic.db.migrate); there is no
# alembic.ini and no URL here, so migrations always target the configured database.
connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
