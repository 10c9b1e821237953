"""Webhooks: signature checks (``signatures.py``), delivery dedup (``deliveries.py``) and the
inbox for triggers that no live session has active (``inbox.py``)."""
