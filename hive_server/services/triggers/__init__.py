"""Triggers: a session's timer and webhook triggers, their cards, store, schedule and scheduler."""
