import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from . import crud
from .access import AccessIndex, MediaRef, parse_media_id
from .config import Settings
from .db import get_session
from .errors import AppError
from .metrics import Metrics
from .models import Media, User
from .security import account_gone, authenticate, request_subject
from .thumbnails import ThumbnailCache

SessionDep = Annotated[AsyncSession, Depends(get_session)]

# Dependencies are `async def` even when they do not await: FastAPI runs plain
# `def` dependencies in a worker thread, a thread hop per dependency per request.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_cache(request: Request) -> ThumbnailCache:
    cache: ThumbnailCache = request.app.state.cache
    return cache


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_current_user(request: Request, session: SessionDep) -> User:
    return await authenticate(request, session)


SettingsDep = Annotated[Settings, Depends(get_settings)]
CacheDep = Annotated[ThumbnailCache, Depends(get_cache)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise AppError(403, "forbidden", "Only admins may do this")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


async def get_visible_media(media_id: str, user: CurrentUser, session: SessionDep) -> Media:
    parsed = parse_media_id(media_id)
    media = None
    if parsed is not None:
        media = await crud.get_visible_media(session, media_id=parsed, user=user)
    if media is None:
        raise _not_found()
    return media


VisibleMedia = Annotated[Media, Depends(get_visible_media)]


def _not_found() -> AppError:
    # Someone else's media answers exactly like a missing one: ids don't leak.
    return AppError(404, "media_not_found", "Media not found")


def indexed_media_ref(request: Request, media_id: str) -> MediaRef:
    """`get_visible_media_ref` from the SQLite access index alone: no session, no await."""
    return check_indexed_access(request.app.state.access, request_subject(request), media_id)


def check_indexed_access(index: AccessIndex, user_id: uuid.UUID, media_id: str) -> MediaRef:
    viewer, ref = index.lookup(user_id, media_id)
    if viewer is None:
        raise account_gone()
    if ref is None or not (viewer.is_admin or ref.owner_id == viewer.user_id):
        raise _not_found()
    return ref


async def get_visible_media_ref(request: Request, media_id: str) -> MediaRef:
    """What a thumbnail request needs (id, sha256), checked like `VisibleMedia`.

    With SQLite this runs without a database session or a thread hop (see
    `mosaic.access`); otherwise it falls back to the regular queries.
    """
    if request.app.state.access.available:
        return indexed_media_ref(request, media_id)
    async with request.app.state.sessionmaker() as session:
        user = await authenticate(request, session)
        media = await get_visible_media(media_id, user, session)
        return MediaRef(media.id, media.owner_id, media.sha256)


VisibleMediaRef = Annotated[MediaRef, Depends(get_visible_media_ref)]
