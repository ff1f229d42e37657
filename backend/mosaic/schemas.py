import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_serializer

Username = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
]
# NIST 800-63B: at least 8 characters; the upper bound keeps hashing cheap to abuse.
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    # Strict: 0, "false" or "no" are refused, not read as a boolean.
    is_admin: bool = Field(default=False, strict=True)


class UserPublic(BaseModel):
    id: uuid.UUID
    username: str
    is_admin: bool
    created_at: datetime

    @field_serializer("created_at")
    def _serialize_created_at(self, value: datetime) -> str:
        return _as_utc(value).isoformat()


class MediaPublic(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int = Field(description="Bytes of the original.")
    width: int = Field(description="Width as displayed, after EXIF orientation.")
    height: int = Field(description="Height as displayed, after EXIF orientation.")
    sha256: str
    owner: str = Field(description="Username of the owner.")
    created_at: datetime
    thumbnail_url: str = Field(description="Changes whenever the thumbnail would change.")

    @field_serializer("created_at")
    def _serialize_created_at(self, value: datetime) -> str:
        return _as_utc(value).isoformat()


class MediaPage(BaseModel):
    items: list[MediaPublic]
    next_cursor: str | None


class HealthPublic(BaseModel):
    status: str
