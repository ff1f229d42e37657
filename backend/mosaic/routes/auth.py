from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from .. import crud
from ..deps import SessionDep, SettingsDep
from ..errors import AppError
from ..openapi import errors
from ..schemas import TokenPublic
from ..security import COOKIE_NAME, TokenIssuer, verify_password

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _cookie_options(settings: SettingsDep) -> dict[str, object]:
    # HttpOnly: scripts never see the token; Strict: no cross-site sends at all.
    return {"httponly": True, "samesite": "strict", "secure": settings.cookie_secure, "path": "/"}


@router.post("/token", responses=errors(401, 422))
async def login(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    # Form fields sent empty count as missing, so the schema says non-empty.
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
) -> TokenPublic:
    user = await crud.get_user_by_username(session, username=username)
    if not verify_password(password, user.password_hash if user else None) or user is None:
        raise AppError(
            401,
            "invalid_credentials",
            "Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    issuer: TokenIssuer = request.app.state.tokens
    token = issuer.issue(user.id)
    expires_in = settings.access_token_minutes * 60
    response.set_cookie(COOKIE_NAME, token, max_age=expires_in, **_cookie_options(settings))  # type: ignore[arg-type]
    return TokenPublic(access_token=token, expires_in=expires_in)


@router.post("/logout", status_code=204)
async def logout(settings: SettingsDep) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, **_cookie_options(settings))  # type: ignore[arg-type]
    return response
