"""Data access as plain functions with keyword-only arguments."""

import base64
import binascii
import uuid
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Media, User
from .security import hash_password


async def count_users(session: AsyncSession) -> int:
    return (await session.scalar(select(func.count()).select_from(User))) or 0


async def get_user_by_username(session: AsyncSession, *, username: str) -> User | None:
    result = await session.scalar(select(User).where(User.username == username))
    return result


async def create_user(
    session: AsyncSession, *, username: str, password: str, is_admin: bool
) -> User:
    user = User(username=username, password_hash=hash_password(password), is_admin=is_admin)
    session.add(user)
    await session.flush()
    return user


async def get_visible_media(
    session: AsyncSession, *, media_id: uuid.UUID, user: User
) -> Media | None:
    """The media if `user` may see it (owner or admin); None hides whether it exists."""
    query = select(Media).where(Media.id == media_id)
    if not user.is_admin:
        query = query.where(Media.owner_id == user.id)
    return await session.scalar(query)


def encode_cursor(media: Media) -> str:
    raw = f"{media.created_at.isoformat()}|{media.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, media_id = raw.partition("|")
        return datetime.fromisoformat(created), uuid.UUID(media_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


async def list_media(
    session: AsyncSession,
    *,
    user: User,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Media], Media | None]:
    """One page, newest first, and the last item when there is a next page.

    Keyset pagination on (created_at, id): stable while uploads and deletes
    happen between pages, and as fast on page 100 as on page 1.
    """
    query = select(Media).order_by(Media.created_at.desc(), Media.id.desc()).limit(limit + 1)
    if not user.is_admin:
        query = query.where(Media.owner_id == user.id)
    if after is not None:
        created_at, media_id = after
        query = query.where(
            or_(
                Media.created_at < created_at,
                and_(Media.created_at == created_at, Media.id < media_id),
            )
        )
    rows = list((await session.scalars(query)).unique())
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1]
    return rows, None
