"""The notifications service's rules, as plain functions over a session."""
