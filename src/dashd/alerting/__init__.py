"""Notifications and alert rules."""
