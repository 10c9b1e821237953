"""Spend limits: the budgets, their limits and the spend ledger."""
