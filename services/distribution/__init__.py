"""Haven's distribution service."""
