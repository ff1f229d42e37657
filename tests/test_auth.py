import base64
import json
import time
import uuid

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from jose import jwt
from sqlalchemy import delete

from mosaic.config import Settings
from mosaic.main import create_app
from mosaic.models import User
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, UserFactory

pytestmark = pytest.mark.anyio
SECRET = "a-test-secret-key-that-is-long-enough-0123456789"


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})


async def admin_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.get("/api/users/me", headers=headers)
    user_id: str = response.json()["id"]
    return user_id


class TestLogin:
    async def test_token_and_cookie(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 7 * 24 * 3600
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"mosaic_session={body['access_token']};")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Secure" not in cookie
        claims = jwt.get_unverified_claims(body["access_token"])
        assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
        assert claims["exp"] > time.time()
        assert (await me(client, body["access_token"])).json()["username"] == "admin"

    async def test_secure_cookie_when_configured(self, settings: Settings) -> None:
        app = create_app(settings.model_copy(update={"cookie_secure": True}))
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.post(
                    "/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
                )
        assert "Secure" in response.headers["set-cookie"]

    @pytest.mark.parametrize(
        "form",
        [
            {"username": "admin", "password": "wrong-password"},
            {"username": "nobody", "password": ADMIN_PASSWORD},
        ],
    )
    async def test_bad_credentials(self, client: httpx.AsyncClient, form: dict[str, str]) -> None:
        response = await client.post("/api/auth/token", data=form)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"
        assert "set-cookie" not in response.headers

    async def test_missing_fields(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/auth/token", data={"username": "admin"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"

    async def test_cookie_session_and_logout(self, client: httpx.AsyncClient) -> None:
        await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert (await client.get("/api/users/me")).status_code == 200
        response = await client.post("/api/auth/logout")  # no CSRF header needed
        assert response.status_code == 204
        assert (
            'mosaic_session=""' in response.headers["set-cookie"]
            or "Max-Age=0" in (response.headers["set-cookie"])
        )
        assert (await client.get("/api/users/me")).status_code == 401


class TestTokens:
    async def test_missing(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/users/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert set(response.json()["error"]) == {"code", "message"}

    @pytest.mark.parametrize(
        "header", ["Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Token abc", "Bearer a.b.c"]
    )
    async def test_malformed_header(self, client: httpx.AsyncClient, header: str) -> None:
        response = await client.get("/api/users/me", headers={"Authorization": header})
        assert response.status_code == 401

    async def test_refused_tokens(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        sub = await admin_id(client, admin_headers)
        now = int(time.time())
        good = {"sub": sub, "exp": now + 600}
        refused = {
            "forged": jwt.encode(good, "another-secret-key-of-decent-length", algorithm="HS256"),
            "expired": jwt.encode({"sub": sub, "exp": now - 10}, SECRET, algorithm="HS256"),
            "no-exp": jwt.encode({"sub": sub}, SECRET, algorithm="HS256"),
            "hs512": jwt.encode(good, SECRET, algorithm="HS512"),
            "no-sub": jwt.encode({"exp": now + 600}, SECRET, algorithm="HS256"),
            "bad-sub": jwt.encode({"sub": "admin", "exp": now + 600}, SECRET, algorithm="HS256"),
            "unknown-sub": jwt.encode(
                {"sub": str(uuid.uuid4()), "exp": now + 600}, SECRET, algorithm="HS256"
            ),
            "alg-none": _unsigned(good),
        }
        assert (await me(client, jwt.encode(good, SECRET, algorithm="HS256"))).status_code == 200
        for name, token in refused.items():
            response = await me(client, token)
            assert response.status_code == 401, name

    async def test_cookie_with_forged_token(self, client: httpx.AsyncClient) -> None:
        client.cookies.set("mosaic_session", "not-a-token")
        assert (await client.get("/api/users/me")).status_code == 401

    async def test_token_of_deleted_user(
        self, app: FastAPI, client: httpx.AsyncClient, create_user: UserFactory
    ) -> None:
        headers = await create_user("carol")
        assert (await client.get("/api/users/me", headers=headers)).status_code == 200
        async with app.state.sessionmaker() as session:
            await session.execute(delete(User).where(User.username == "carol"))
            await session.commit()
        assert (await client.get("/api/users/me", headers=headers)).status_code == 401


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class TestCsrf:
    async def test_cookie_only_unsafe_request_needs_header(self, client: httpx.AsyncClient) -> None:
        await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        body = {"username": "dave", "password": USER_PASSWORD}
        response = await client.post("/api/users", json=body)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "csrf_check_failed"
        response = await client.post(
            "/api/users", json=body, headers={"X-Requested-With": "something-else"}
        )
        assert response.status_code == 403
        response = await client.post(
            "/api/users", json=body, headers={"X-Requested-With": "mosaic"}
        )
        assert response.status_code == 201

    async def test_safe_requests_and_bearer_need_no_header(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        body = {"username": "erin", "password": USER_PASSWORD}
        assert (
            await client.post("/api/users", json=body, headers=admin_headers)
        ).status_code == 201
        await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert (await client.get("/api/users/me")).status_code == 200


class TestUsers:
    async def test_me(self, client: httpx.AsyncClient, alice: dict[str, str]) -> None:
        body = (await client.get("/api/users/me", headers=alice)).json()
        assert body["username"] == "alice"
        assert body["is_admin"] is False
        assert "password" not in str(body) and "hash" not in str(body)

    async def test_create_conflict_and_forbidden(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str], alice: dict[str, str]
    ) -> None:
        body = {"username": "alice", "password": USER_PASSWORD, "is_admin": False}
        response = await client.post("/api/users", json=body, headers=admin_headers)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "username_taken"
        body["username"] = "frank"
        response = await client.post("/api/users", json=body, headers=alice)
        assert response.status_code == 403
        response = await client.post("/api/users", json=body)
        assert response.status_code == 401

    async def test_create_admin(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        body = {"username": "grace", "password": USER_PASSWORD, "is_admin": True}
        response = await client.post("/api/users", json=body, headers=admin_headers)
        assert response.status_code == 201
        assert response.json()["is_admin"] is True

    @pytest.mark.parametrize(
        "body",
        [
            {"username": "", "password": USER_PASSWORD},
            {"username": "has space", "password": USER_PASSWORD},
            {"username": "heidi", "password": "short"},
            {"username": "heidi"},
            {"username": "heidi", "password": USER_PASSWORD, "is_admin": "maybe"},
        ],
    )
    async def test_invalid_body(
        self, client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, object]
    ) -> None:
        response = await client.post("/api/users", json=body, headers=admin_headers)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
