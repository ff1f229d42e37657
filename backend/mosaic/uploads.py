"""Stream a multipart upload to disk: bounded size, hashed on the way, never all in memory."""

import asyncio
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiofiles
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from .errors import AppError

FIELD_NAME = "file"
# Multipart framing (boundaries, part headers) on top of the file itself.
_ENVELOPE_SLACK = 64 * 1024
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    path: Path
    filename: str
    size: int
    sha256: str


def clean_filename(raw: str) -> str:
    # Browsers may send a full client path; keep the last component, printable only.
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_FILENAME.sub("", name).strip()
    return name[:255] or "upload"


def _too_large(max_bytes: int) -> AppError:
    return AppError(413, "file_too_large", f"The file is larger than {max_bytes} bytes")


class _PartCollector:
    """Callbacks for python-multipart that keep the bytes of the `file` field."""

    def __init__(self) -> None:
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.in_file = False
        self.seen_file = False
        self.ended = False  # the closing boundary came: the body is whole
        self.filename = ""
        self.chunks: list[bytes] = []

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self.in_file = name == FIELD_NAME and not self.seen_file
        if self.in_file:
            self.seen_file = True
            self.filename = clean_filename(options.get(b"filename", b"").decode("utf-8", "replace"))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.chunks.append(data[start:end])

    def on_part_end(self) -> None:
        self.in_file = False

    def on_end(self) -> None:
        self.ended = True


async def receive_upload(request: Request, *, directory: Path, max_bytes: int) -> ReceivedFile:
    """Write the `file` field of a multipart request to a temporary file in `directory`.

    The caller owns the returned file (rename or delete it). On any error the
    temporary file is already gone.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + _ENVELOPE_SLACK:
        raise _too_large(max_bytes)
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise AppError(422, "file_missing", "Send the file as multipart/form-data field 'file'")

    collector = _PartCollector()
    parser = MultipartParser(boundary, callbacks=cast(Any, _callbacks(collector)))
    digest = hashlib.sha256()
    size = 0
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=".part")
    os.close(fd)
    temp = Path(temp_name)
    try:
        async with aiofiles.open(temp, "wb") as handle:
            async for chunk in request.stream():
                parser.write(chunk)
                for piece in collector.chunks:
                    size += len(piece)
                    if size > max_bytes:
                        raise _too_large(max_bytes)
                    digest.update(piece)
                    await handle.write(piece)
                collector.chunks.clear()
            parser.finalize()
            if not collector.ended:
                # Cut short: a body that stops before its closing boundary may
                # hold half a file, which must not be kept as the upload (a
                # server may end a cut body without telling, as granian does over RSGI).
                raise AppError(400, "malformed_upload", "The multipart body is malformed")
            if collector.seen_file:
                # On disk before the row says it exists: an upload that got a 201
                # survives a power cut. It also keeps later fsyncs (thumbnails)
                # from paying for this file's dirty pages.
                await handle.flush()
                await asyncio.to_thread(os.fsync, handle.fileno())
        if not collector.seen_file:
            raise AppError(422, "file_missing", "The form has no 'file' field")
    except ClientDisconnect:
        temp.unlink(missing_ok=True)
        raise AppError(400, "upload_interrupted", "The upload did not finish") from None
    except Exception as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, AppError):
            raise
        raise AppError(400, "malformed_upload", "The multipart body is malformed") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return ReceivedFile(temp, collector.filename, size, digest.hexdigest())


def _callbacks(collector: _PartCollector) -> dict[str, object]:
    names = (
        "on_part_begin",
        "on_header_field",
        "on_header_value",
        "on_header_end",
        "on_headers_finished",
        "on_part_data",
        "on_part_end",
        "on_end",
    )
    return {name: getattr(collector, name) for name in names}
