"""Registry access for build workers: a credential the token endpoint trades for tokens.

A build credential is an access token whose only entry is `build:<repository>:push`. It opens
nothing on /v2 by itself; at the token endpoint, sent as the Basic password, it buys tokens for
pull wherever its owner may pull, and push to that one repository. The tokens it buys hold no
`build` entry, so they cannot be traded again.
"""

from __future__ import annotations

from moorage.auth.access import PULL, PUSH, Scope
from moorage.auth.signing import AccessClaims, TokenSigner

BUILD_RESOURCE = "build"


def looks_like_jwt(secret: str) -> bool:
    """Whether a Basic password is a signed token rather than a password or access token."""
    return secret.startswith("eyJ") and secret.count(".") == 2


def issue_build_credential(signer: TokenSigner, subject: str, user_id: int, repository: str) -> str:
    """A credential for one build of `subject` that pushes to `repository`."""
    scope = Scope(BUILD_RESOURCE, repository, frozenset({PUSH}))
    return signer.issue_access(subject, user_id, None, [scope]).token


def build_repository(claims: AccessClaims) -> str | None:
    """The repository a build credential may push to; None for any other token."""
    names = [name for kind, name in claims.access if kind == BUILD_RESOURCE]
    return names[0] if len(names) == 1 else None


def narrow_to_build(scopes: list[Scope], repository: str) -> list[Scope]:
    """The part of granted scopes a build may use: pull anywhere granted, push to `repository`."""
    narrowed = []
    for scope in scopes:
        if scope.resource_type != "repository":
            continue
        ceiling = {PULL, PUSH} if scope.name == repository else {PULL}
        if actions := scope.actions & ceiling:
            narrowed.append(Scope(scope.resource_type, scope.name, frozenset(actions)))
    return narrowed
