from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError

from .. import crud
from ..deps import AdminUser, CurrentUser, SessionDep
from ..errors import AppError
from ..openapi import authenticated
from ..schemas import UserCreate, UserPublic

router = APIRouter(prefix="/api/users", tags=["users"])


def _taken(username: str) -> AppError:
    return AppError(409, "username_taken", f"The username {username!r} is taken")


@router.get("/me", **authenticated())
async def read_current_user(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@router.post("", status_code=201, **authenticated(400, 403, 409))
async def create_user(body: UserCreate, _: AdminUser, session: SessionDep) -> UserPublic:
    if await crud.get_user_by_username(session, username=body.username) is not None:
        raise _taken(body.username)
    try:
        user = await crud.create_user(
            session, username=body.username, password=body.password, is_admin=body.is_admin
        )
        await session.commit()
    except IntegrityError:  # created concurrently by another request
        await session.rollback()
        raise _taken(body.username) from None
    return UserPublic.model_validate(user, from_attributes=True)
