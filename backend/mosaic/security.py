"""Passwords, session tokens and who is asking."""

import time
import uuid
from collections import OrderedDict

from fastapi import Request
from jose import JWTError, jwt
from pwdlib import PasswordHash
from sqlalchemy.ext.asyncio import AsyncSession

from .errors import AppError
from .models import User

ALGORITHM = "HS256"
COOKIE_NAME = "mosaic_session"
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "mosaic"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

password_hash = PasswordHash.recommended()  # argon2id
# Verified when the username is unknown, so a wrong name costs as long as a
# wrong password and login timing does not reveal which accounts exist.
_DUMMY_HASH = password_hash.hash("mosaic-timing-padding")


def hash_password(password: str) -> str:
    return password_hash.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    if hashed is None:
        password_hash.verify(password, _DUMMY_HASH)
        return False
    return password_hash.verify(password, hashed)


class TokenIssuer:
    """Issues HS256 session tokens and verifies them, remembering recent verdicts.

    Verifying a JWT costs tens of microseconds; a gallery sends hundreds of
    requests with the same token. A bounded map of verified tokens to
    (subject, expiry) skips the HMAC and JSON work and still honours `exp`.
    Only valid tokens are remembered, so garbage cannot evict them.
    """

    def __init__(self, secret_key: str, minutes: int, *, remember: int = 4096) -> None:
        self.secret_key = secret_key
        self.minutes = minutes
        self._remember = remember
        self._verified: OrderedDict[str, tuple[uuid.UUID, float]] = OrderedDict()

    def issue(self, user_id: uuid.UUID) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iat": now, "exp": now + self.minutes * 60}
        return jwt.encode(claims, self.secret_key, algorithm=ALGORITHM)

    def warm(self) -> None:
        """Verify a throwaway token (not remembered). The first verification in a
        process imports the crypto backend, ~5 ms a user's request would wait."""
        jwt.decode(self.issue(uuid.UUID(int=0)), self.secret_key, algorithms=[ALGORITHM])

    def subject(self, token: str) -> uuid.UUID | None:
        """The user id in a valid token, or None for anything forged, expired or malformed."""
        known = self._verified.get(token)
        if known is not None:
            if known[1] > time.time():
                return known[0]
            del self._verified[token]
            return None
        try:
            # An explicit algorithm list: "none" and RS/ES confusion are refused.
            claims = jwt.decode(
                token,
                self.secret_key,
                algorithms=[ALGORITHM],
                options={"require_exp": True, "require_sub": True},
            )
            subject = uuid.UUID(claims["sub"])
            expires = float(claims["exp"])
        except (JWTError, ValueError, TypeError, KeyError, AttributeError):
            return None
        self._verified[token] = (subject, expires)
        while len(self._verified) > self._remember:
            self._verified.popitem(last=False)
        return subject


def _unauthorized(message: str) -> AppError:
    return AppError(401, "not_authenticated", message, headers={"WWW-Authenticate": "Bearer"})


def request_token(request: Request) -> str:
    """The bearer token, else the session cookie (with the CSRF rule for unsafe methods)."""
    return pick_token(
        request.method,
        request.headers.get("authorization"),
        request.cookies.get(COOKIE_NAME),
        request.headers.get(CSRF_HEADER),
    )


def pick_token(
    method: str, authorization: str | None, cookie: str | None, csrf_header: str | None
) -> str:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Malformed Authorization header")
        return token.strip()
    if not cookie:
        raise _unauthorized("Not signed in")
    # A cross-site form can make the browser send our cookie, but not a custom
    # header: unsafe requests authenticated by the cookie alone must carry it.
    if method not in _SAFE_METHODS and csrf_header != CSRF_VALUE:
        raise AppError(403, "csrf_check_failed", "Missing X-Requested-With: mosaic header")
    return cookie


def request_subject(request: Request) -> uuid.UUID:
    """The verified user id of the request's token (401 when there is none)."""
    issuer: TokenIssuer = request.app.state.tokens
    user_id = issuer.subject(request_token(request))
    if user_id is None:
        raise _unauthorized("Invalid or expired token")
    return user_id


def account_gone() -> AppError:
    # The account was deleted after the token was issued.
    return _unauthorized("Invalid or expired token")


async def authenticate(request: Request, session: AsyncSession) -> User:
    user = await session.get(User, request_subject(request))
    if user is None:
        raise account_gone()
    return user
