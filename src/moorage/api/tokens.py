"""Access tokens of the signed-in account."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response

from moorage.accounts.tokens import AccessToken
from moorage.api.deps import CurrentUser, ServicesDep
from moorage.api.models import CreatedToken, NewToken, TokenOut
from moorage.clock import utc_now

router = APIRouter(prefix="/tokens", tags=["access tokens"])


def token_out(token: AccessToken) -> TokenOut:
    """The API view of a token: never its secret."""
    return TokenOut(
        id=token.id,
        name=token.name,
        scope=",".join(sorted(token.actions)),
        namespace=token.namespace,
        expires_at=token.expires_at,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
    )


@router.get("")
async def list_tokens(user: CurrentUser, services: ServicesDep) -> list[TokenOut]:
    """The caller's tokens, newest first."""
    return [token_out(token) for token in await services.tokens.list(user.name)]


@router.post("", status_code=201)
async def create_token(body: NewToken, user: CurrentUser, services: ServicesDep) -> CreatedToken:
    """A new token; its secret is in this response and nowhere else, ever."""
    expires_at = utc_now() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    token, secret = await services.tokens.create(
        user.name, body.name, body.scope, body.namespace, expires_at
    )
    return CreatedToken(**token_out(token).model_dump(), secret=secret)


@router.delete("/{token_id}", status_code=204)
async def revoke_token(token_id: str, user: CurrentUser, services: ServicesDep) -> Response:
    """Revoke a token: it stops working at once."""
    await services.tokens.revoke(user.name, token_id)
    return Response(status_code=204)
