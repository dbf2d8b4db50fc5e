"""Console sessions: a signed, time-limited cookie holding the account name and a CSRF token.

The cookie is signed (not encrypted) with the deployment's session key; it holds
no secret but the CSRF token, which is only useful to the browser that already has it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "moorage_session"
# A session ends this long after sign-in, however busy it was.
# TODO: no server-side record of sessions - signing out or changing the account password does
# not end a copy of the session cookie taken before; it stays valid until this lifetime ends.
SESSION_LIFETIME_SECONDS = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    """One browser's session: who signed in (if anyone), its CSRF token, a one-shot notice."""

    csrf_token: str
    user: str | None = None
    notice: str | None = None
    # Unix time the session began; rewriting the cookie does not extend it.
    started_at: int = field(default_factory=lambda: int(time.time()))

    @classmethod
    def anonymous(cls) -> Session:
        """A fresh session nobody has signed in to."""
        return cls(csrf_token=secrets.token_urlsafe(32))

    @classmethod
    def signed_in(cls, user: str) -> Session:
        """A session for `user`, just signed in: a new CSRF token, so an old one is worthless."""
        return cls(csrf_token=secrets.token_urlsafe(32), user=user)


@dataclass(slots=True)
class SessionHolder:
    """The request's session; handlers replace it, and the cookie is rewritten if they do."""

    session: Session
    changed: bool = False

    def replace(self, session: Session) -> None:
        """Swap in a new session, to be sent back as the cookie."""
        self.session = session
        self.changed = True

    def set_notice(self, notice: str) -> None:
        """A message for the next page shown, such as "Namespace created"."""
        self.replace(replace(self.session, notice=notice))

    def pop_notice(self) -> str | None:
        """The pending notice, which will not be shown again."""
        notice = self.session.notice
        if notice is not None:
            self.replace(replace(self.session, notice=None))
        return notice


class SessionSigner:
    """Turns sessions into cookie values and back, refusing forged or expired ones."""

    def __init__(
        self, key: Callable[[], bytes], lifetime_seconds: int = SESSION_LIFETIME_SECONDS
    ) -> None:
        # A function, since the key is read from the database when the services start.
        self._key = key
        self._serializer_of_key: URLSafeTimedSerializer | None = None
        self.lifetime_seconds = lifetime_seconds

    @property
    def _serializer(self) -> URLSafeTimedSerializer:
        if self._serializer_of_key is None:
            self._serializer_of_key = URLSafeTimedSerializer(
                self._key(), salt="moorage-console-session"
            )
        return self._serializer_of_key

    def dumps(self, session: Session) -> str:
        """The signed cookie value of `session`."""
        return self._serializer.dumps(
            {
                "csrf": session.csrf_token,
                "user": session.user,
                "notice": session.notice,
                "started": session.started_at,
            }
        )

    def loads(self, cookie: str | None) -> Session | None:
        """The session in a cookie value, or None if it is missing, forged or too old."""
        if not cookie:
            return None
        try:
            payload = self._serializer.loads(cookie, max_age=self.lifetime_seconds)
        except BadSignature:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("csrf"), str):
            return None
        started = payload.get("started")
        if not isinstance(started, int) or time.time() - started > self.lifetime_seconds:
            return None
        user, notice = payload.get("user"), payload.get("notice")
        return Session(
            csrf_token=payload["csrf"],
            user=user if isinstance(user, str) else None,
            notice=notice if isinstance(notice, str) else None,
            started_at=started,
        )
