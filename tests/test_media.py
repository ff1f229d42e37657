import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from starlette.types import Message, Receive, Scope, Send

from mosaic.config import Settings
from mosaic.uploads import clean_filename
from tests.conftest import files_under, upload
from tests.images import encode, jpeg_with_gps, oriented_jpeg, png_header_bomb

pytestmark = pytest.mark.anyio


def photo(
    size: tuple[int, int] = (640, 480), color: tuple[int, int, int] = (90, 140, 200)
) -> bytes:
    return encode(Image.new("RGB", size, color), "JPEG")


def stored_state(settings: Settings) -> list[Path]:
    """Every file under the originals folder (uploads in progress included)."""
    return files_under(settings.originals_dir)


class TestUpload:
    async def test_media_json(self, client: httpx.AsyncClient, alice: dict[str, str]) -> None:
        data = oriented_jpeg(6)
        response = await upload(client, alice, data, filename="IMG_0001.JPG")
        assert response.status_code == 201, response.text
        media = response.json()
        assert uuid.UUID(media["id"])
        assert media["filename"] == "IMG_0001.JPG"
        assert media["content_type"] == "image/jpeg"
        assert media["size"] == len(data)
        assert (media["width"], media["height"]) == (400, 200)  # as displayed
        assert media["sha256"] == hashlib.sha256(data).hexdigest()
        assert media["owner"] == "alice"
        assert datetime.fromisoformat(media["created_at"]).tzinfo is not None
        assert media["thumbnail_url"].startswith(f"/api/media/{media['id']}/thumbnail?v=")

    @pytest.mark.parametrize(
        ("fmt", "content_type"),
        [
            ("PNG", "image/png"),
            ("GIF", "image/gif"),
            ("WEBP", "image/webp"),
            ("BMP", "image/bmp"),
            ("TIFF", "image/tiff"),
        ],
    )
    async def test_type_comes_from_content(
        self, client: httpx.AsyncClient, alice: dict[str, str], fmt: str, content_type: str
    ) -> None:
        data = encode(Image.new("RGB", (50, 40), (1, 2, 3)), fmt)
        # The client lies about name and type; the content decides.
        response = await upload(client, alice, data, "lies.jpg", "image/jpeg")
        assert response.status_code == 201, response.text
        assert response.json()["content_type"] == content_type

    async def test_filename_is_cleaned(
        self, client: httpx.AsyncClient, alice: dict[str, str]
    ) -> None:
        response = await upload(client, alice, photo(), filename="C:\\Users\\me\\..\\trip.jpg")
        assert response.json()["filename"] == "trip.jpg"

    async def test_original_stored_under_its_id(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        data = photo()
        media = (await upload(client, alice, data)).json()
        assert stored_state(settings) == [settings.originals_dir / media["id"]]
        assert (settings.originals_dir / media["id"]).read_bytes() == data

    async def test_no_thumbnail_made_at_upload(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        await upload(client, alice, photo())
        assert files_under(settings.resolved_cache_dir) == []

    async def test_requires_auth(self, client: httpx.AsyncClient, settings: Settings) -> None:
        response = await upload(client, {}, photo())
        assert response.status_code == 401
        assert stored_state(settings) == []


class TestUploadRejections:
    @pytest.mark.parametrize(
        ("data", "status", "code"),
        [
            pytest.param(b"", 415, "unsupported_media_type", id="empty"),
            pytest.param(b"just some text", 415, "unsupported_media_type", id="text"),
            pytest.param(
                b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                415,
                "unsupported_media_type",
                id="svg",
            ),
            pytest.param(
                b"<html><script>alert(1)</script></html>", 415, "unsupported_media_type", id="html"
            ),
            pytest.param(
                photo((1200, 900))[:2000], 422, "unprocessable_image", id="truncated-jpeg"
            ),
            pytest.param(
                b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 422, "unprocessable_image", id="corrupt-png"
            ),
            pytest.param(png_header_bomb(50_000, 50_000), 422, "image_too_large", id="pixel-bomb"),
        ],
    )
    async def test_bad_content(
        self,
        client: httpx.AsyncClient,
        alice: dict[str, str],
        settings: Settings,
        data: bytes,
        status: int,
        code: str,
    ) -> None:
        response = await upload(client, alice, data)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]
        assert stored_state(settings) == []
        listing = await client.get("/api/media", headers=alice)
        assert listing.json()["items"] == []

    async def test_too_large(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        data = encode(Image.effect_noise((2000, 2000), 100).convert("RGB"), "BMP")
        assert len(data) > settings.max_upload_bytes
        response = await upload(client, alice, data)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "file_too_large"
        assert stored_state(settings) == []

    async def test_too_large_while_streaming(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        # No Content-Length: the limit must hold while the body streams in.
        limit = settings.max_upload_bytes
        boundary = "mosaicboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()

        async def body() -> AsyncIterator[bytes]:
            yield head
            for _ in range(limit // (256 * 1024) + 2):
                yield b"\xff" * (256 * 1024)
            yield f"\r\n--{boundary}--\r\n".encode()

        response = await client.post(
            "/api/media",
            content=body(),
            headers={**alice, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 413
        assert stored_state(settings) == []

    async def test_body_cut_before_its_closing_boundary(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        # What a server may hand on when the client goes mid-upload without
        # saying so: the body just ends. Half a photo must not become media,
        # even when what arrived still decodes.
        boundary = "mosaicboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="cut.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        for tail in (b"", b"\r\n--mosaicbou"):
            response = await client.post(
                "/api/media",
                content=head + photo((640, 480)) + tail,
                headers={**alice, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            assert response.status_code == 400, tail
            assert response.json()["error"]["code"] == "malformed_upload"
            assert stored_state(settings) == []

    async def test_over_max_pixels(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        settings.max_pixels = 640 * 480 - 1
        response = await upload(client, alice, photo((640, 480)))
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "image_too_large"
        assert stored_state(settings) == []

    async def test_too_slow_to_decode(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        settings.render_cpu_seconds = 0.002
        noise = encode(Image.effect_noise((2000, 2000), 30), "PNG")
        response = await upload(client, alice, noise)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "image_too_slow"
        assert stored_state(settings) == []
        # A small photo decodes well within the same budget.
        settings.render_cpu_seconds = 1
        assert (await upload(client, alice, photo((320, 240)))).status_code == 201

    @pytest.mark.parametrize(
        ("kwargs", "code"),
        [
            ({"data": {"other": "x"}}, "file_missing"),
            ({"files": {"picture": ("a.jpg", b"123", "image/jpeg")}}, "file_missing"),
            ({"json": {"file": "x"}}, "file_missing"),
        ],
    )
    async def test_no_file_field(
        self,
        client: httpx.AsyncClient,
        alice: dict[str, str],
        settings: Settings,
        kwargs: dict[str, object],
        code: str,
    ) -> None:
        response = await client.post("/api/media", headers=alice, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 422
        assert response.json()["error"]["code"] == code
        assert stored_state(settings) == []


class TestListing:
    async def test_newest_first_with_stable_cursor(
        self, client: httpx.AsyncClient, alice: dict[str, str]
    ) -> None:
        ids = [(await upload(client, alice, photo((20 + i, 20)))).json()["id"] for i in range(7)]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/api/media", params=params, headers=alice)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            # An upload between pages must not shift the next page.
            await upload(client, alice, photo((5, 5)))
        assert seen == list(reversed(ids))

    async def test_default_limit_is_fifty(
        self, client: httpx.AsyncClient, alice: dict[str, str]
    ) -> None:
        data = photo((8, 8))
        for _ in range(51):
            await upload(client, alice, data)
        page = (await client.get("/api/media", headers=alice)).json()
        assert len(page["items"]) == 50
        assert page["next_cursor"]

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": 0},
            {"limit": 201},
            {"limit": "ten"},
            {"cursor": "garbage!!"},
            {"cursor": "Zm9vfGJhcg"},
        ],
    )
    async def test_bad_parameters(
        self, client: httpx.AsyncClient, alice: dict[str, str], params: dict[str, object]
    ) -> None:
        response = await client.get("/api/media", params=params, headers=alice)  # type: ignore[arg-type]
        assert response.status_code == 422
        assert "code" in response.json()["error"]

    async def test_users_see_their_own_admins_all(
        self,
        client: httpx.AsyncClient,
        alice: dict[str, str],
        bob: dict[str, str],
        admin_headers: dict[str, str],
    ) -> None:
        a = (await upload(client, alice, photo())).json()["id"]
        b = (await upload(client, bob, photo())).json()["id"]

        async def listed(headers: dict[str, str]) -> set[str]:
            page = (await client.get("/api/media", headers=headers)).json()
            return {item["id"] for item in page["items"]}

        assert await listed(alice) == {a}
        assert await listed(bob) == {b}
        assert await listed(admin_headers) == {a, b}


class TestAccess:
    async def test_other_users_media_is_404_everywhere(
        self,
        client: httpx.AsyncClient,
        alice: dict[str, str],
        bob: dict[str, str],
        settings: Settings,
    ) -> None:
        media_id = (await upload(client, alice, photo())).json()["id"]
        missing_id = str(uuid.uuid4())
        for path in ["", "/original", "/thumbnail", "/thumbnail?size=small"]:
            foreign = await client.get(f"/api/media/{media_id}{path}", headers=bob)
            missing = await client.get(f"/api/media/{missing_id}{path}", headers=bob)
            assert foreign.status_code == missing.status_code == 404
            assert foreign.json() == missing.json()
        response = await client.delete(f"/api/media/{media_id}", headers=bob)
        assert response.status_code == 404
        assert (await client.get(f"/api/media/{media_id}", headers=alice)).status_code == 200
        assert files_under(settings.resolved_cache_dir) == []

    async def test_admin_sees_everything(
        self, client: httpx.AsyncClient, alice: dict[str, str], admin_headers: dict[str, str]
    ) -> None:
        media_id = (await upload(client, alice, photo())).json()["id"]
        for path in ["", "/original", "/thumbnail"]:
            response = await client.get(f"/api/media/{media_id}{path}", headers=admin_headers)
            assert response.status_code == 200

    @pytest.mark.parametrize(
        "bad_id",
        [
            "..%2F..%2Fsecret_key",
            "%2e%2e",
            "not-a-uuid",
            "00000000000000000000000000000000",
            "{12345678-1234-5678-1234-567812345678}",
            "urn:uuid:12345678-1234-5678-1234-567812345678",
            "12345678-1234-5678-1234-56781234567８",
            "a" * 5000,
            "%00",
        ],
    )
    async def test_malformed_ids_are_404(
        self, client: httpx.AsyncClient, alice: dict[str, str], bad_id: str
    ) -> None:
        for suffix in ["", "/original", "/thumbnail"]:
            response = await client.get(f"/api/media/{bad_id}{suffix}", headers=alice)
            assert response.status_code == 404, (bad_id, suffix)
            assert "error" in response.json()

    @pytest.mark.parametrize("path", ["", "/original", "/thumbnail"])
    async def test_anonymous_is_401(
        self, client: httpx.AsyncClient, alice: dict[str, str], path: str
    ) -> None:
        media_id = (await upload(client, alice, photo())).json()["id"]
        assert (await client.get(f"/api/media/{media_id}{path}")).status_code == 401
        assert (await client.get("/api/media")).status_code == 401
        assert (await client.delete(f"/api/media/{media_id}")).status_code == 401


class TestOriginal:
    async def test_bytes_and_type(self, client: httpx.AsyncClient, alice: dict[str, str]) -> None:
        data = encode(Image.new("RGB", (30, 30), (4, 5, 6)), "PNG")
        media_id = (await upload(client, alice, data, "pic.png", "image/png")).json()["id"]
        response = await client.get(f"/api/media/{media_id}/original", headers=alice)
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["content-type"] == "image/png"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "pic.png" in response.headers["content-disposition"]

    async def test_original_keeps_exif(
        self, client: httpx.AsyncClient, alice: dict[str, str]
    ) -> None:
        data = jpeg_with_gps()
        media_id = (await upload(client, alice, data)).json()["id"]
        response = await client.get(f"/api/media/{media_id}/original", headers=alice)
        assert response.content == data  # the user's file, untouched

    async def test_gone_from_disk_is_404(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        media_id = (await upload(client, alice, photo())).json()["id"]
        (settings.originals_dir / media_id).unlink()
        response = await client.get(f"/api/media/{media_id}/original", headers=alice)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "media_not_found"

    @pytest.mark.parametrize("range_header", [None, "bytes=10-99", "bytes=0-9,1048570-1048589"])
    async def test_deleted_while_sent_is_still_whole(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: dict[str, str],
        settings: Settings,
        range_header: str | None,
    ) -> None:
        """A delete that lands after the route found the original (here: as the
        headers go out) must not cut the body short or turn it into a 500, even
        on a server that offers to send files by path."""
        noise = Image.effect_noise((1600, 1200), 80)
        data = encode(Image.merge("RGB", [noise] * 3), "JPEG")
        assert len(data) > 1024 * 1024  # more than one read of the response
        media_id = (await upload(client, alice, data)).json()["id"]
        original = settings.originals_dir / media_id
        sent: list[str] = []

        async def deleting(scope: Scope, receive: Receive, send: Send) -> None:
            extensions = {**scope.get("extensions", {}), "http.response.pathsend": {}}

            async def send_and_delete(message: Message) -> None:
                sent.append(message["type"])
                if message["type"] == "http.response.start":
                    original.unlink()
                await send(message)

            await app(dict(scope, extensions=extensions), receive, send_and_delete)

        headers = dict(alice) if range_header is None else {**alice, "range": range_header}
        transport = httpx.ASGITransport(app=deleting)
        async with httpx.AsyncClient(transport=transport, base_url="http://mosaic.test") as http:
            response = await http.get(f"/api/media/{media_id}/original", headers=headers)
        assert not original.exists()
        assert "http.response.pathsend" not in sent
        if range_header is None:
            assert response.status_code == 200
            assert response.content == data
        elif "," not in range_header:
            assert response.status_code == 206
            assert response.content == data[10:100]
        else:
            assert response.status_code == 206
            assert data[0:10] in response.content
            assert data[1048570:1048590] in response.content


class TestDelete:
    async def test_delete_removes_everything(
        self, client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
    ) -> None:
        media_id = (await upload(client, alice, photo())).json()["id"]
        keep_id = (await upload(client, alice, photo())).json()["id"]
        for size in ["small", "medium", "large"]:
            await client.get(f"/api/media/{media_id}/thumbnail?size={size}", headers=alice)
        await client.get(f"/api/media/{keep_id}/thumbnail", headers=alice)
        assert len(list(settings.resolved_cache_dir.glob(f"*/{media_id}/*.jpg"))) == 3

        response = await client.delete(f"/api/media/{media_id}", headers=alice)
        assert response.status_code == 204
        assert response.content == b""
        assert not any(media_id in str(p) for p in files_under(settings.data_dir))
        assert not list(settings.resolved_cache_dir.glob(f"*/{media_id}"))
        for path in ["", "/original", "/thumbnail"]:
            assert (
                await client.get(f"/api/media/{media_id}{path}", headers=alice)
            ).status_code == 404
        assert not any(media_id in str(p) for p in settings.data_dir.rglob("*"))
        assert (await client.delete(f"/api/media/{media_id}", headers=alice)).status_code == 404
        assert (
            await client.get(f"/api/media/{keep_id}/thumbnail", headers=alice)
        ).status_code == 200

    async def test_admin_deletes_any(
        self, client: httpx.AsyncClient, alice: dict[str, str], admin_headers: dict[str, str]
    ) -> None:
        media_id = (await upload(client, alice, photo())).json()["id"]
        response = await client.delete(f"/api/media/{media_id}", headers=admin_headers)
        assert response.status_code == 204

    async def test_cookie_delete_needs_csrf_header(
        self, client: httpx.AsyncClient, alice: dict[str, str]
    ) -> None:
        from tests.conftest import USER_PASSWORD

        media_id = (await upload(client, alice, photo())).json()["id"]
        await client.post("/api/auth/token", data={"username": "alice", "password": USER_PASSWORD})
        assert (await client.delete(f"/api/media/{media_id}")).status_code == 403
        assert (await client.get(f"/api/media/{media_id}")).status_code == 200
        response = await client.delete(
            f"/api/media/{media_id}", headers={"X-Requested-With": "mosaic"}
        )
        assert response.status_code == 204


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("a\x00b\x1f.jpg", "ab.jpg"),
        ("  ", "upload"),
        ("x" * 300, "x" * 255),
        ("ok.jpg", "ok.jpg"),
    ],
)
def test_clean_filename(raw: str, clean: str) -> None:
    assert clean_filename(raw) == clean
