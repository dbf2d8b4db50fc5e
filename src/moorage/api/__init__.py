"""The /api/v1 management API: accounts, tokens, namespaces, repositories, tags."""
