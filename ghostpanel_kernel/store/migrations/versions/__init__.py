"""The store's revisions, oldest first: ``rev_0001_base``, ``rev_0002_gateway``."""
