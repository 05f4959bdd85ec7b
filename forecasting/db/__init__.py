"""Database access: where the database is (URL or embedded server), connections, and schema migrations."""

from forecasting.db.connection import Database, resolve_database
from forecasting.db.migrations import apply_migrations, pending_migrations

__all__ = ["Database", "apply_migrations", "pending_migrations", "resolve_database"]
