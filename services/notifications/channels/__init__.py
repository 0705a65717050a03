"""Channels: how a rendered message leaves Haven (SMS gateway, SMTP, webhooks, a local file)."""
