"""Haven's registration service."""
