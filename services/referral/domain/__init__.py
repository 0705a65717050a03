"""The referral service's rules, as plain functions over a session (or no session at all)."""
