"""Surge: apply a Boltfile to one or many environments (plan, apply, destroy, status)."""
