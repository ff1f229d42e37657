import httpx
import pytest

from tests.conftest import make_image, upload

pytestmark = pytest.mark.anyio


async def test_upload_and_thumbnail(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await upload(client, admin_headers, make_image())
    assert response.status_code == 201, response.text
    media = response.json()
    thumb = await client.get(media["thumbnail_url"], headers=admin_headers)
    assert thumb.status_code == 200, thumb.text
    assert thumb.headers["content-type"] == "image/jpeg"
