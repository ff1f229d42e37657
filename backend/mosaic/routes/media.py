from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from .. import crud
from ..access import MediaRef
from ..conditional import etag_matches
from ..config import Settings
from ..deps import (
    CacheDep,
    CurrentUser,
    MetricsDep,
    SessionDep,
    SettingsDep,
    VisibleMedia,
    VisibleMediaRef,
)
from ..errors import AppError
from ..metrics import Metrics
from ..openapi import authenticated, binary
from ..responses import OpenFileResponse
from ..schemas import MediaPage, MediaPublic
from ..storage import delete_media as delete_stored_media
from ..storage import media_public, open_original, original_path, store_upload
from ..thumbnails import CONTENT_TYPES, SPECS, ThumbnailCache, ThumbnailSpec
from ..uploads import receive_upload

router = APIRouter(prefix="/api/media", tags=["media"])

# The URL carries the source hash and render version (`?v=`), so the bytes
# behind it never change: browsers may keep them for a year without asking.
# private: they are per-user, shared caches and CDNs must not store them.
THUMBNAIL_CACHE_CONTROL = "private, max-age=31536000, immutable"
_ORIGINAL_TYPES = sorted(set(CONTENT_TYPES.values()))
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            },
            "encoding": {"file": {"contentType": ", ".join(_ORIGINAL_TYPES)}},
        }
    },
}


# The body is streamed to disk by receive_upload, not parsed by FastAPI, so
# its shape is declared here.
@router.post(
    "",
    status_code=201,
    **authenticated(400, 403, 413, 415, openapi_extra={"requestBody": _UPLOAD_BODY}),
)
async def upload_media(
    request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> MediaPublic:
    received = await receive_upload(
        request, directory=settings.originals_dir, max_bytes=settings.max_upload_bytes
    )
    media = await store_upload(session, settings=settings, owner=user, received=received)
    return media_public(media)


@router.get("", **authenticated())
async def list_media(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=256,
            pattern="^[A-Za-z0-9_-]+$",
            description="next_cursor of the previous page (opaque).",
        ),
    ] = None,
) -> MediaPage:
    after = None
    if cursor is not None:
        after = crud.decode_cursor(cursor)
        if after is None:
            raise AppError(422, "invalid_cursor", "The cursor is not valid")
    items, last = await crud.list_media(session, user=user, limit=limit, after=after)
    next_cursor = crud.encode_cursor(last) if last is not None else None
    return MediaPage(items=[media_public(m) for m in items], next_cursor=next_cursor)


@router.get("/{media_id}", **authenticated(404))
async def read_media(media: VisibleMedia) -> MediaPublic:
    return media_public(media)


@router.get(
    "/{media_id}/original",
    response_class=OpenFileResponse,
    **authenticated(
        404,
        responses={200: binary(*_ORIGINAL_TYPES, description="The original")},
    ),
)
async def read_original(media: VisibleMedia, settings: SettingsDep) -> OpenFileResponse:
    # Opened here, so a delete from now on cannot cut the answer short (responses.py).
    handle = open_original(settings, media.id)
    if handle is None:
        raise AppError(404, "media_not_found", "Media not found")
    return OpenFileResponse(
        handle,
        media_type=media.content_type,
        filename=media.filename,
        content_disposition_type="inline",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache"},
    )


@router.get(
    "/{media_id}/thumbnail",
    response_class=Response,
    **authenticated(
        404,
        415,
        503,
        responses={
            200: binary("image/jpeg", description="The thumbnail"),
            304: {"description": "The thumbnail matches If-None-Match"},
        },
    ),
)
@router.head("/{media_id}/thumbnail", include_in_schema=False)
async def read_thumbnail(
    request: Request,
    media: VisibleMediaRef,
    settings: SettingsDep,
    cache: CacheDep,
    metrics: MetricsDep,
    size: Literal["small", "medium", "large"] = "medium",
) -> Response:
    spec = SPECS[size]
    status, etag, data = await thumbnail_answer(
        request.headers.get("if-none-match"), media, spec, settings, cache, metrics
    )
    return _jpeg_response(request, status, etag, data)


async def thumbnail_answer(
    if_none_match: str | None,
    media: MediaRef,
    spec: ThumbnailSpec,
    settings: Settings,
    cache: ThumbnailCache,
    metrics: Metrics,
) -> tuple[int, str, bytes]:
    """(status, ETag, body): a 304, a hit, or a miss rendered through the
    cache's single-flight. Raises the cache's ThumbnailError on failure."""
    cached = cached_thumbnail(if_none_match, media, spec, cache, metrics)
    if cached is not None:
        return cached
    thumbnail = await cache.get(media.id, spec, source=original_path(settings, media.id))
    (metrics.misses if thumbnail.generated else metrics.hits).inc()
    return 200, spec.etag(media.sha256), thumbnail.data


def cached_thumbnail(
    if_none_match: str | None,
    media: MediaRef,
    spec: ThumbnailSpec,
    cache: ThumbnailCache,
    metrics: Metrics,
) -> tuple[int, str, bytes] | None:
    """(status, ETag, body) of a 304 or a hit, found without awaiting anything;
    None when the thumbnail needs a render."""
    etag = spec.etag(media.sha256)
    if etag_matches(if_none_match, etag):
        # The ETag derives from the content hash: no need to look at the file.
        metrics.not_modified.inc()
        return 304, etag, b""
    data = cache.read(media.id, spec)
    if data is None:
        return None
    metrics.hits.inc()
    return 200, etag, data


def _jpeg_response(request: Request, status: int, etag: str, data: bytes) -> Response:
    headers = {"ETag": etag, "Cache-Control": THUMBNAIL_CACHE_CONTROL}
    if status == 304:
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(len(data))
    body = b"" if request.method == "HEAD" else data
    return Response(body, media_type="image/jpeg", headers=headers)


@router.delete("/{media_id}", status_code=204, **authenticated(403, 404))
async def delete_media(
    media: VisibleMedia, session: SessionDep, settings: SettingsDep, cache: CacheDep
) -> Response:
    await delete_stored_media(session, settings=settings, cache=cache, media=media)
    return Response(status_code=204)
