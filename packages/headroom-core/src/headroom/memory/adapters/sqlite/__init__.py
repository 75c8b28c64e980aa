"""SQL adapters on SQLite: the SQLModel store (WAL, BEGIN IMMEDIATE writes) and the FTS5 index."""
