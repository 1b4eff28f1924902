"""Durable records in SQL (SQLAlchemy Core, async): SQLite embedded by default, PostgreSQL in production.

``tables`` defines the schema, ``migrate`` runs Alembic, ``db.Database`` owns the engine, and one
small module per record kind holds typed repository functions taking an ``AsyncConnection``.
"""
