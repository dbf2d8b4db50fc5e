"""Every console route, page by page."""

from __future__ import annotations

from moorage.console.routes import (
    accounts,
    admin,
    builds,
    namespaces,
    quotas,
    repositories,
    tokens,
)

CONSOLE_ROUTES = [
    *accounts.ROUTES,
    *namespaces.ROUTES,
    *repositories.ROUTES,
    *quotas.ROUTES,
    *tokens.ROUTES,
    *builds.ROUTES,
    *admin.ROUTES,
]
