import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from . import crud
from .config import Settings
from .db import get_session
from .errors import AppError
from .metrics import Metrics
from .models import Media, User
from .security import authenticate
from .thumbnails import ThumbnailCache

SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_cache(request: Request) -> ThumbnailCache:
    cache: ThumbnailCache = request.app.state.cache
    return cache


def get_metrics(request: Request) -> Metrics:
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


def parse_media_id(value: str) -> uuid.UUID | None:
    """Only the canonical 36-character form; anything else never reaches a path."""
    if len(value) != 36:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed if str(parsed) == value.lower() else None


async def get_visible_media(media_id: str, user: CurrentUser, session: SessionDep) -> Media:
    parsed = parse_media_id(media_id)
    media = None
    if parsed is not None:
        media = await crud.get_visible_media(session, media_id=parsed, user=user)
    if media is None:
        # Someone else's media answers exactly like a missing one: ids don't leak.
        raise AppError(404, "media_not_found", "Media not found")
    return media


VisibleMedia = Annotated[Media, Depends(get_visible_media)]
