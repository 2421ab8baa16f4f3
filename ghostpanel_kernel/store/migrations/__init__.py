"""Alembic migrations of GhostPanel's store: ``env.py`` and the revisions in ``versions/``.

They are run by :func:`ghostpanel_kernel.store._migrate.bring_to_head` when a database
that is not at the newest revision is opened (``docs/audit.md``, "Migrations").
"""
