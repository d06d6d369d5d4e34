"""Persistence: the database store, its migrations and the analytics over history."""
