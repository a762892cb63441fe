"""API tokens for programs (admins only): each has a role, is shown once, lasts until revoked."""

import logging

from fastapi import APIRouter
from fastapi.responses import Response

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, Admin
from services.api.accounts.tokens import create_api_token, get_api_token, list_api_tokens, revoke
from services.api.context import Context
from services.api.errors import not_found
from services.api.schemas import ErrorOut, TokenCreatedOut, TokenIn, TokenOut

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=AUTH_RESPONSES)


@router.get("", response_model=list[TokenOut], summary="Every API token, revoked ones too (never the secret)")
def tokens(_admin: Admin, context: Context) -> list[TokenOut]:
    with context.engine.connect() as connection:
        return [TokenOut.model_validate(token) for token in list_api_tokens(connection)]


@router.post(
    "",
    status_code=201,
    response_model=TokenCreatedOut,
    summary="Make an API token: the secret is in this answer only",
)
def add_token(body: TokenIn, admin: Admin, context: Context) -> TokenCreatedOut:
    with context.engine.begin() as connection:
        secret, token_id = create_api_token(connection, body.name, body.role, admin.user_id)
        audit.record(
            connection, admin, "token.create", "token", token_id, detail=f"'{body.name}' as {body.role}"
        )
        token = get_api_token(connection, token_id)
    assert token is not None
    logger.info("API token %d (%s, %s) created", token_id, body.name, body.role)
    return TokenCreatedOut(**TokenOut.model_validate(token).model_dump(), token=secret)


@router.delete(
    "/{token_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API token (at once; revoking twice changes nothing)",
    responses={204: {"description": "Revoked"}, 404: {"model": ErrorOut, "description": "No such API token"}},
)
def delete_token(token_id: int, admin: Admin, context: Context) -> Response:
    with context.engine.begin() as connection:
        token = get_api_token(connection, token_id)
        if token is None:
            raise not_found("API token", token_id)
        if token.revoked_at is None:
            revoke(connection, token_id)
            audit.record(connection, admin, "token.revoke", "token", token_id, detail=f"'{token.name}'")
    logger.info("API token %d revoked", token_id)
    return Response(status_code=204)
