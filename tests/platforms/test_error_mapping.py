"""Every HTTP adapter maps its platform's failures the same way, each from the platform's
own error shapes: rate limit (with the retry-after the platform's headers give) and 5xx
are retryable, invalid content is permanent with the platform's message, a refused token
is an auth error, a connection lost after the request was sent leaves the outcome unknown
(unless an idempotency key makes a retry safe), and no message ever echoes a token."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.models.vocabulary import Platform
from app.platforms.publishing import (
    AuthError,
    Credentials,
    OutcomeUnknown,
    PermanentError,
    Post,
    RetryableError,
)
from app.platforms.registry import publisher_for
from app.settings import Settings
from tests.platforms.conftest import adapter_settings, creds, image, make_post
from tests.platforms.fakes import TOKEN, FakePlatforms, Fault

pytestmark = pytest.mark.no_db

IG_ID = "17841400001"


def graph_error(message: str, code: int, **more: Any) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AxyZ",
            **more,
        }
    }


def usage(minutes: int) -> dict[str, str]:
    entry = {
        "type": "pages",
        "call_count": 100,
        "total_cputime": 20,
        "total_time": 20,
        "estimated_time_to_regain_access": minutes,
    }
    return {"x-business-use-case-usage": json.dumps({"111": [entry]})}


@dataclass
class Case:
    platform: Platform
    path: str  # the request that makes the post public
    credentials: Callable[[str | None], Credentials]
    rate_limit: Fault
    retry_after: tuple[float, float]
    invalid: Fault
    server_error: Fault = field(
        default_factory=lambda: Fault(500, {"error": "Internal Server Error"})
    )
    post: Callable[[FakePlatforms], Post] = lambda fake: make_post(
        "Hello #launch https://example.com"
    )
    # A lost answer is safe to retry (the platform de-duplicates by our key).
    idempotent: bool = False

    @property
    def id(self) -> str:
        return self.platform.value


# Reset times are filled in when the test runs (collection may be minutes earlier).
IN_30_EPOCH = "<now+30 as Unix seconds>"
IN_30_ISO = "<now+30 as ISO 8601>"


def _timed(fault: Fault) -> Fault:
    now = datetime.now(UTC) + timedelta(seconds=30)
    stamps = {IN_30_EPOCH: str(int(time.time()) + 30), IN_30_ISO: now.isoformat()}
    headers = {k: stamps.get(v, v) for k, v in fault.headers.items()}
    return Fault(fault.status, fault.body, headers)


CASES = [
    Case(
        Platform.X,
        "/2/tweets",
        lambda token: creds(token=token),
        Fault(
            429,
            {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
            {"x-rate-limit-remaining": "0", "x-rate-limit-reset": IN_30_EPOCH},
        ),
        (20, 30),
        Fault(
            400,
            {
                "title": "Invalid Request",
                "status": 400,
                "type": "about:blank",
                "detail": f"One or more parameters to your request was invalid ({TOKEN}).",
            },
        ),
        Fault(
            503, {"title": "Service Unavailable", "detail": "Service Unavailable", "status": 503}
        ),
    ),
    Case(
        Platform.LINKEDIN,
        "/rest/posts",
        lambda token: creds("urn:li:person:782bbtaQ", token=token),
        Fault(
            429,
            {
                "status": 429,
                "message": "Resource level throttle APPLICATION DAY limit "
                "for calls to this resource is reached.",
            },
            {"retry-after": "30"},
        ),
        (30, 30),
        Fault(422, {"status": 422, "message": f"ERROR :: /commentary :: {TOKEN} is too long"}),
        Fault(500, {"status": 500, "message": "Internal Server Error"}),
    ),
    Case(
        Platform.FACEBOOK,
        "/v23.0/111/feed",
        lambda token: creds("111", token=token),
        Fault(400, graph_error("(#32) Page request limit reached", 32), usage(2)),
        (120, 120),
        Fault(400, graph_error(f"(#100) Invalid parameter {TOKEN}", 100)),
        Fault(500, graph_error("An unknown error has occurred.", 1, is_transient=True)),
    ),
    Case(
        Platform.INSTAGRAM,
        f"/v23.0/{IG_ID}/media_publish",
        lambda token: creds(IG_ID, token=token),
        Fault(
            400, graph_error("Application request limit reached", 4, is_transient=True), usage(1)
        ),
        (60, 60),
        Fault(400, graph_error(f"The media is not ready for publishing ({TOKEN})", 9007)),
        Fault(500, graph_error("An unexpected error has occurred.", 2, is_transient=True)),
        post=lambda fake: make_post("Caption #launch", media=(image(fake),)),
    ),
    Case(
        Platform.THREADS,
        "/v1.0/1234/threads_publish",
        lambda token: creds("1234", token=token),
        Fault(400, graph_error("Application request limit reached", 4), {"retry-after": "45"}),
        (45, 45),
        Fault(400, graph_error(f"Param text must be at most 500 characters long. {TOKEN}", 100)),
        Fault(500, graph_error("An unknown error occurred", 1)),
    ),
    Case(
        Platform.MASTODON,
        "/api/v1/statuses",
        lambda token: creds(token=token, instance_url="{fake}"),
        Fault(
            429,
            {"error": "Too many requests"},
            {
                "x-ratelimit-limit": "300",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": IN_30_ISO,
            },
        ),
        (20, 30),
        Fault(422, {"error": f"Validation failed: Text character limit of 500 exceeded {TOKEN}"}),
        Fault(503, {"error": "Service Unavailable"}),
        idempotent=True,
    ),
    Case(
        Platform.BLUESKY,
        "/xrpc/com.atproto.repo.createRecord",
        lambda token: Credentials(
            external_id="did:plc:fake1234", access_token=token, extra={"handle": "dev.bsky.social"}
        ),
        Fault(
            429,
            {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
            {
                "ratelimit-limit": "5000",
                "ratelimit-remaining": "0",
                "ratelimit-reset": IN_30_EPOCH,
                "ratelimit-policy": "5000;w=3600",
            },
        ),
        (20, 30),
        Fault(
            400,
            {
                "error": "InvalidRequest",
                "message": "Invalid app.bsky.feed.post record: "
                f"Record/text must not be longer than 300 graphemes ({TOKEN})",
            },
        ),
        Fault(502, {"error": "UpstreamFailure", "message": "Upstream Failure"}),
    ),
]


def _credentials(case: Case, fake: FakePlatforms, token: str | None) -> Credentials:
    found = case.credentials(token)
    if case.platform is Platform.BLUESKY and token == TOKEN:
        found = Credentials(
            external_id=found.external_id,
            extra=found.extra,
            access_token=fake.session_jwts()["accessJwt"],
        )
    extra = {k: v.replace("{fake}", fake.url) for k, v in found.extra.items()}
    return Credentials(access_token=found.access_token, external_id=found.external_id, extra=extra)


async def _publish(
    case: Case,
    fake: FakePlatforms,
    http: httpx.AsyncClient,
    settings: Settings,
    token: str | None = TOKEN,
    post: Post | None = None,
) -> Any:
    publisher = publisher_for(case.platform, http, settings)
    return await publisher.publish(post or case.post(fake), _credentials(case, fake, token))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_rate_limit_is_retryable_with_the_platforms_retry_after(
    case: Case, fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    fake.fail("POST", case.path, _timed(case.rate_limit))
    with pytest.raises(RetryableError) as caught:
        await _publish(case, fake, http, platform_settings)
    low, high = case.retry_after
    assert caught.value.retry_after is not None
    assert low - 1 <= caught.value.retry_after <= high
    assert "rate limit" in caught.value.message


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_server_error_is_retryable(
    case: Case, fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    fake.fail("POST", case.path, case.server_error)
    with pytest.raises(RetryableError) as caught:
        await _publish(case, fake, http, platform_settings)
    assert caught.value.status == case.server_error.status


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_invalid_content_is_permanent_with_the_platforms_message_and_no_token(
    case: Case, fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    secret = _credentials(case, fake, TOKEN).access_token or TOKEN
    # The platform echoes the token in its message (some do): it must not reach the user.
    body = json.loads(json.dumps(case.invalid.body).replace(TOKEN, secret))
    fake.fail("POST", case.path, Fault(case.invalid.status, body))
    publisher = publisher_for(case.platform, http, platform_settings)
    credentials = _credentials(case, fake, TOKEN)
    credentials = Credentials(
        access_token=secret, external_id=credentials.external_id, extra=credentials.extra
    )
    with pytest.raises(PermanentError) as caught:
        await publisher.publish(case.post(fake), credentials)
    error = caught.value
    assert not isinstance(error, AuthError)
    assert error.status == case.invalid.status
    assert secret not in error.message and "[redacted]" in error.message
    assert len(error.message) <= 300
    # The platform's own words reach the user.
    assert any(
        word in error.message.lower()
        for word in ("invalid", "too long", "exceeded", "not ready", "at most", "longer than")
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_refused_token_is_an_auth_error(
    case: Case, fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    wrong = "tok-revoked-987654"
    if case.platform is Platform.BLUESKY:
        wrong = "eyJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6ImNvbS5hdHByb3RvLmFjY2VzcyJ9.forged-signature"
    with pytest.raises(AuthError) as caught:
        await _publish(case, fake, http, platform_settings, token=wrong)
    assert wrong not in caught.value.message
    assert str(caught.value) == caught.value.message


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_answer_lost_after_the_post_was_made(
    case: Case, fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    post = case.post(fake)
    fake.fail("POST", case.path, Fault(drop=True))
    if case.idempotent:
        # Mastodon keeps the Idempotency-Key: retrying is safe and finds the same status.
        with pytest.raises(RetryableError):
            await _publish(case, fake, http, platform_settings, post=post)
        again = await _publish(case, fake, http, platform_settings, post=post)
        assert list(fake.statuses) == [again.platform_post_id]
        return
    with pytest.raises(OutcomeUnknown) as caught:
        await _publish(case, fake, http, platform_settings, post=post)
    assert "may" in caught.value.message
    assert len(fake.requests("POST", case.path)) == 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_unreachable_platform_is_retryable(
    case: Case, fake: FakePlatforms, http: httpx.AsyncClient
) -> None:
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening
        settings = adapter_settings(
            fake,
            x_api_base_url=closed,
            linkedin_api_base_url=closed,
            meta_graph_base_url=closed,
            threads_api_base_url=closed,
            bluesky_pds_url=closed,
        )
        credentials = _credentials(case, fake, TOKEN)
        if case.platform is Platform.MASTODON:
            credentials = Credentials(access_token=TOKEN, extra={"instance_url": closed})
        if case.platform is Platform.BLUESKY:
            credentials = Credentials(
                external_id=credentials.external_id,
                access_token=credentials.access_token,
                extra={"pds_url": closed},
            )
        publisher = publisher_for(case.platform, http, settings)
        post = make_post("Hello") if case.platform is not Platform.INSTAGRAM else case.post(fake)
        with pytest.raises(RetryableError) as caught:
            await publisher.publish(post, credentials)
    assert "could not connect" in caught.value.message or "download" in caught.value.message


async def test_read_timeout_after_sending_is_unknown(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    fake.fail("POST", "/2/tweets", Fault(hang=True))
    with pytest.raises(OutcomeUnknown) as caught:
        await _publish(CASES[0], fake, http, platform_settings)
    assert "ReadTimeout" in caught.value.message
