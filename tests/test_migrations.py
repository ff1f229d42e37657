import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from mosaic.db import SCHEMA_REVISION, alembic_config, create_engine, migrate
from mosaic.models import Base

pytestmark = pytest.mark.anyio


async def test_migrations_match_the_models(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await migrate(engine)
        await migrate(engine)  # idempotent: a second start changes nothing

        def diff(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection)
            return list(compare_metadata(context, Base.metadata))

        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
    finally:
        await engine.dispose()


def test_schema_revision_is_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [SCHEMA_REVISION]


def test_a_current_database_is_left_alone_without_alembic(tmp_path: Path) -> None:
    """A server worker that finds the schema current never imports Alembic."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    script = (
        "import asyncio, sys\n"
        "from mosaic.db import create_engine, migrate\n"
        f"engine = create_engine({url!r})\n"
        "asyncio.run(migrate(engine))\n"
        "print('alembic' in sys.modules)\n"
    )

    def run() -> str:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run() == "True"  # a new database: migrated
    assert run() == "False"  # the next start finds it current
