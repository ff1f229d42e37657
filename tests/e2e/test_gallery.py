"""The gallery in a real browser, against the real app (see conftest.py)."""

import io
import json
import re
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ADMIN_PASSWORD, ARTIFACTS, screenshot
from tests.live_server import LiveServer

pytestmark = pytest.mark.e2e
USER_PASSWORD = "e2e-user-password"
THUMBNAIL = re.compile(r"/api/media/[0-9a-f-]{36}/thumbnail")


def photo(index: int, size: tuple[int, int] = (900, 600)) -> bytes:
    hue = (index * 47) % 255
    image = Image.new("RGB", size, (hue, 255 - hue, (hue * 3) % 255))
    draw = ImageDraw.Draw(image)
    draw.ellipse(
        (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill=(250, 250, 250)
    )
    draw.text((20, 20), f"#{index}", fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def sign_in(page: Page, server: LiveServer, username: str, password: str) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Gallery")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def ensure_user(server: LiveServer, username: str) -> dict[str, str]:
    admin = server.token("admin", ADMIN_PASSWORD)
    body = {"username": username, "password": USER_PASSWORD, "is_admin": False}
    response = httpx.post(f"{server.url}/api/users", json=body, headers=admin)
    assert response.status_code in {201, 409}, response.text
    return server.token(username, USER_PASSWORD)


def loaded_thumbnails(page: Page) -> int:
    count: int = page.evaluate(
        "() => [...document.querySelectorAll('ul.grid img')]"
        ".filter(img => img.complete && img.naturalWidth > 0).length"
    )
    return count


def test_admin_creates_user_who_uploads(page: Page, server: LiveServer, tmp_path: Path) -> None:
    sign_in(page, server, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_contain_text("Created user “carol”")
    # The API's own message for a taken name.
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("alert")).to_contain_text("is taken")
    sign_out(page)

    sign_in(page, server, "carol", USER_PASSWORD)
    expect(page.get_by_text("No photos yet")).to_be_visible()
    files = []
    for index in range(3):
        path = tmp_path / f"holiday-{index}.jpg"
        path.write_bytes(photo(index))
        files.append(path)
    page.get_by_test_id("file-input").set_input_files(files)
    grid = page.get_by_role("list", name="Media")
    expect(grid.get_by_role("img")).to_have_count(3)
    page.wait_for_function(
        "() => [...document.querySelectorAll('ul.grid img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length === 3"
    )
    assert loaded_thumbnails(page) == 3
    expect(page.get_by_text("Uploaded")).to_have_count(3)

    # A rejected upload shows the API's message for that file.
    fake = tmp_path / "not-really.jpg"
    fake.write_text("<html>this is not an image</html>")
    page.get_by_test_id("file-input").set_input_files([fake])
    expect(page.get_by_role("alert")).to_contain_text(
        "not a JPEG, PNG, GIF, WebP, BMP or TIFF image"
    )
    screenshot(page, "upload")
    expect(grid.get_by_role("img")).to_have_count(3)


def test_two_hundred_items_load_lazily(page: Page, server: LiveServer) -> None:
    headers = ensure_user(server, "dave")
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for index in range(200):
            files = {"file": (f"seed-{index:03}.jpg", photo(index, (480, 320)), "image/jpeg")}
            assert client.post("/api/media", files=files).status_code == 201

    requested: list[str] = []
    page.on(
        "request",
        lambda request: requested.append(request.url) if THUMBNAIL.search(request.url) else None,
    )
    sign_in(page, server, "dave", USER_PASSWORD)
    grid = page.get_by_role("list", name="Media")
    expect(grid.get_by_role("img").first).to_be_visible()
    # The page reached "networkidle" before signing in (a client-side route
    # change loads no new page), so that wait alone can return before the
    # gallery asks for any thumbnail: wait for the first one to arrive.
    page.wait_for_function("() => document.querySelector('ul.grid img')?.naturalWidth > 0")
    page.wait_for_load_state("networkidle")
    first_paint = len(requested)
    assert 0 < first_paint < 100, first_paint
    screenshot(page, "gallery")

    for _ in range(40):
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(150)
        if (
            grid.get_by_role("img").count() >= 200
            and page.get_by_role("button", name="Load more").count() == 0
        ):
            break
    page.keyboard.press("End")
    page.wait_for_load_state("networkidle")
    expect(grid.get_by_role("img")).to_have_count(200)
    page.wait_for_function(
        "() => { const imgs = document.querySelectorAll('ul.grid img');"
        " return imgs[imgs.length - 1].naturalWidth > 0 }"
    )
    after_scroll = len(requested)
    assert after_scroll > first_paint
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    figures = {
        "viewport": "1280x800",
        "items": 200,
        "first_paint_thumbnail_requests": first_paint,
        "after_scrolling_to_bottom": after_scroll,
    }
    (ARTIFACTS / "figures.json").write_text(json.dumps(figures, indent=2))


def test_viewer_steps_with_arrow_keys(page: Page, server: LiveServer) -> None:
    headers = ensure_user(server, "erin")
    with httpx.Client(base_url=server.url, headers=headers) as client:
        for index in range(3):
            files = {"file": (f"trip-{index}.jpg", photo(index + 10), "image/jpeg")}
            assert client.post("/api/media", files=files).status_code == 201
    sign_in(page, server, "erin", USER_PASSWORD)
    page.get_by_role("img", name="trip-2.jpg").click()  # newest first
    viewer = page.get_by_role("dialog", name="trip-2.jpg")
    expect(viewer).to_be_visible()
    expect(viewer.get_by_text("(1 of 3)")).to_be_visible()
    large = viewer.get_by_role("img", name="trip-2.jpg")
    expect(large).to_have_attribute("src", re.compile(r"size=large"))
    page.wait_for_function("() => document.querySelector('.viewer img')?.naturalWidth > 0")
    screenshot(page, "viewer")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("dialog", name="trip-1.jpg")).to_be_visible()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("dialog", name="trip-0.jpg")).to_be_visible()
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_role("dialog", name="trip-1.jpg")).to_be_visible()
    download = page.get_by_role("link", name="Download original")
    expect(download).to_have_attribute("href", re.compile(r"/api/media/[0-9a-f-]{36}/original"))
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_users_cannot_see_each_other(page: Page, server: LiveServer) -> None:
    frank = ensure_user(server, "frank")
    ensure_user(server, "grace")
    with httpx.Client(base_url=server.url, headers=frank) as client:
        files = {"file": ("franks-secret.jpg", photo(99), "image/jpeg")}
        secret = client.post("/api/media", files=files).json()
    sign_in(page, server, "grace", USER_PASSWORD)
    expect(page.get_by_text("No photos yet")).to_be_visible()
    expect(page.get_by_role("img", name="franks-secret.jpg")).to_have_count(0)
    for path in [
        secret["thumbnail_url"],
        f"/api/media/{secret['id']}",
        f"/api/media/{secret['id']}/original",
    ]:
        response = page.request.get(server.url + path)
        assert response.status == 404, path


def test_admin_deletes_an_item(page: Page, server: LiveServer) -> None:
    headers = ensure_user(server, "heidi")
    with httpx.Client(base_url=server.url, headers=headers) as client:
        for name in ["keep.jpg", "remove-me.jpg"]:
            files = {"file": (name, photo(len(name)), "image/jpeg")}
            assert client.post("/api/media", files=files).status_code == 201
    sign_in(page, server, "admin", ADMIN_PASSWORD)
    tile = page.get_by_role("img", name="remove-me.jpg")
    tile.hover()
    page.get_by_role("button", name="Delete remove-me.jpg").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("remove-me.jpg")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("img", name="remove-me.jpg")).to_have_count(0)
    page.reload()
    expect(page.get_by_role("img", name="keep.jpg")).to_be_visible()
    expect(page.get_by_role("img", name="remove-me.jpg")).to_have_count(0)
