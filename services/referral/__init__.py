"""Haven's referral service."""
