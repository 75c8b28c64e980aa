"""PostgreSQL + pgvector adapters (extra ``headroom-core[postgres]``): store, vectors, full text."""
