"""Push webhooks from GitHub, GitLab, Gitea and plain JSON: verified, parsed, matched to a rule.

`read_push` is pure: headers, body and the rule's secret in, a `PushEvent` (or None for
events that are not pushes, such as GitHub's ping) out. A wrong signature or token raises
`UnauthorizedError`; nothing is built from an unverified request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass

from moorage.builds.jobs import Build, BuildJobService
from moorage.builds.rule_store import BuildRuleService
from moorage.builds.rules import ResolvedRef, ref_matches
from moorage.errors import InvalidInputError, UnauthorizedError
from moorage.log import get_logger

log = get_logger(__name__)

BODY_MAX = 5 * 1024 * 1024
ZERO_COMMIT = "0" * 40
# The header a plain JSON hook carries its secret in.
PLAIN_SECRET_HEADER = "x-moorage-secret"


@dataclass(frozen=True, slots=True)
class PushEvent:
    """A push of one branch or tag, as the sender reported it."""

    provider: str
    ref: ResolvedRef
    commit: str | None


def _hmac_sha256(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _verify(provider: str, headers: Mapping[str, str], body: bytes, secret: str) -> None:
    if provider == "github":
        given = headers.get("x-hub-signature-256", "")
        valid = _same(given, "sha256=" + _hmac_sha256(secret, body))
    elif provider == "gitea":
        given = headers.get("x-gitea-signature", "")
        valid = _same(given, _hmac_sha256(secret, body))
    elif provider == "gitlab":
        valid = _same(headers.get("x-gitlab-token", ""), secret)
    else:
        valid = _same(headers.get(PLAIN_SECRET_HEADER, ""), secret)
    if not valid:
        raise UnauthorizedError(f"the {provider} webhook signature or token is wrong")


def _provider(headers: Mapping[str, str]) -> tuple[str, str]:
    """Who sent the hook, and its event name."""
    if "x-gitea-event" in headers:
        return "gitea", headers["x-gitea-event"]
    if "x-github-event" in headers:
        return "github", headers["x-github-event"]
    if "x-gitlab-event" in headers:
        return "gitlab", headers["x-gitlab-event"]
    return "plain", "push"


def read_push(headers: Mapping[str, str], body: bytes, secret: str) -> PushEvent | None:
    """The push a verified hook reports; None for other events and for deleted refs."""
    provider, event = _provider(headers)
    _verify(provider, headers, body, secret)
    if event.lower() not in ("push", "push hook", "tag push hook"):
        return None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError("the webhook body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("ref"), str):
        raise InvalidInputError("the webhook body has no ref")
    ref = ResolvedRef.parse(payload["ref"])
    if ref is None and provider == "plain":
        ref = ResolvedRef("branch", payload["ref"])
    if ref is None:
        raise InvalidInputError(f"the pushed ref {payload['ref'][:100]!r} is no branch or tag")
    after = payload.get("after")
    commit = after if isinstance(after, str) and after else None
    if payload.get("deleted") is True or commit == ZERO_COMMIT:
        return None
    return PushEvent(provider, ref, commit)


class WebhookService:
    """Turns a verified push into a build of the rule, when the pushed ref matches it."""

    def __init__(self, rules: BuildRuleService, jobs: BuildJobService) -> None:
        self._rules = rules
        self._jobs = jobs

    async def receive(self, rule_id: str, headers: Mapping[str, str], body: bytes) -> Build | None:
        """The build a push hook starts; None when the event needs none."""
        if len(body) > BODY_MAX:
            raise InvalidInputError(f"the webhook body is over {BODY_MAX} bytes")
        secret = await self._rules.webhook_secret(rule_id)
        try:
            push = read_push(headers, body, secret)
        except UnauthorizedError as exc:
            log.warning("build webhook refused", rule_id=rule_id, reason=exc.message)
            raise
        rule = await self._rules.get(rule_id, None)
        if push is None or not ref_matches(rule.spec.ref, push.ref):
            log.info("build webhook ignored", rule_id=rule_id, ref=push and push.ref.full_name)
            return None
        return await self._jobs.enqueue(rule, push.ref.full_name, "webhook")
