"""Haven's notifications service."""
