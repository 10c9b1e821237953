"""Webhooks: signatures, deliveries and the inbox of sessions that are not live."""
