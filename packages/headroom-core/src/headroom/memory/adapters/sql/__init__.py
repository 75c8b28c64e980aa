"""Dialect-neutral SQLModel schema and filter clauses shared by the SQL stores."""
