"""Every route x {anonymous, owner, other user, admin} x {bearer, cookie, cookie without CSRF header}."""

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, UserFactory, upload
from tests.images import encode, quadrants

pytestmark = pytest.mark.anyio

ROUTES = [
    ("GET", "/api/users/me"),
    ("POST", "/api/users"),
    ("POST", "/api/media"),
    ("GET", "/api/media"),
    ("GET", "/api/media/{id}"),
    ("GET", "/api/media/{id}/original"),
    ("GET", "/api/media/{id}/thumbnail"),
    ("HEAD", "/api/media/{id}/thumbnail"),
    ("DELETE", "/api/media/{id}"),
    ("POST", "/api/auth/logout"),
]
UNSAFE = {"POST", "DELETE"}


def expected(role: str, mode: str, method: str, path: str) -> int:
    if path == "/api/auth/logout":
        return 204  # anyone, no CSRF header needed
    if role == "anonymous":
        return 401
    if mode == "cookie-no-csrf" and method in UNSAFE:
        return 403
    if path == "/api/users":
        return 201 if role == "admin" else 403
    if path == "/api/media" and method == "POST":
        return 201
    if "{id}" in path and role == "other":
        return 404  # exactly like a missing id
    return 204 if method == "DELETE" else 200


@pytest.mark.parametrize("mode", ["bearer", "cookie", "cookie-no-csrf"])
@pytest.mark.parametrize("role", ["anonymous", "owner", "other", "admin"])
async def test_matrix(
    client: httpx.AsyncClient, create_user: UserFactory, role: str, mode: str
) -> None:
    owner = await create_user("owner")
    await create_user("other")
    password = {"owner": USER_PASSWORD, "other": USER_PASSWORD, "admin": ADMIN_PASSWORD}
    photo = encode(quadrants(), "JPEG")
    results = []
    for index, (method, template) in enumerate(ROUTES):
        media = (await upload(client, owner, photo)).json()
        client.cookies.clear()
        headers: dict[str, str] = {}
        if role != "anonymous":
            login = await client.post(
                "/api/auth/token", data={"username": role, "password": password[role]}
            )
            if mode == "bearer":
                client.cookies.clear()
                headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            elif mode == "cookie":
                headers["X-Requested-With"] = "mosaic"
        path = template.format(id=media["id"])
        kwargs: dict[str, object] = {}
        if template == "/api/users":
            kwargs["json"] = {"username": f"new-{role}-{mode}-{index}", "password": USER_PASSWORD}
        if template == "/api/media" and method == "POST":
            kwargs["files"] = {"file": ("x.jpg", photo, "image/jpeg")}
        response = await client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        results.append(
            (method, template, response.status_code, expected(role, mode, method, template))
        )
        if response.status_code >= 400 and method != "HEAD":
            assert set(response.json()["error"]) == {"code", "message"}
    mismatches = [r for r in results if r[2] != r[3]]
    assert mismatches == [], mismatches
