"""The webhook publisher against a real local receiver, and the outbound address guard."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from app.infra import outbound
from app.infra.outbound import GuardedTransport, OutboundBlocked
from app.models.vocabulary import Platform
from app.platforms import registry
from app.platforms.adapters.webhook import WebhookPublisher
from app.platforms.publishing import (
    AuthError,
    Credentials,
    MediaItem,
    OutcomeUnknown,
    PermanentError,
    Post,
    RetryableError,
)
from app.settings import Settings
from tests.publishing.receiver import SECRET, AcceptThenHang, Hang, Receiver, Reply, serve_receiver

pytestmark = pytest.mark.no_db


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"outbound_allow_private_networks": True}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def _post(text: str = "Hello from SmartContent") -> Post:
    return Post(
        target_id=uuid.uuid4(),
        content_id=uuid.uuid4(),
        text=text,
        parts=(text,),
        media=(MediaItem(url="https://cdn.example/a.png", mime_type="image/png", alt_text="A"),),
        title="Launch",
        idempotency_key=uuid.uuid4().hex,
    )


def _creds(url: str, secret: str = SECRET) -> Credentials:
    return Credentials(extra={"url": url, "secret": secret})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with outbound.client(_settings(), timeout=1.0) as client:
        yield client


def test_registered() -> None:
    assert isinstance(
        registry.publisher_for(Platform.WEBHOOK, httpx.AsyncClient(), _settings()),
        WebhookPublisher,
    )


async def test_signed_post_and_recorded_id(receiver: Receiver, http: httpx.AsyncClient) -> None:
    publisher = WebhookPublisher(http, _settings())
    post = _post("Grüße 👋")
    published = await publisher.publish(post, _creds(receiver.url))
    assert published.platform_post_id == "wh-1"
    assert published.url == "https://receiver.example/p/wh-1"

    [headers], [raw] = receiver.headers, receiver.raw
    assert headers["content-type"] == "application/json"
    timestamp = headers["x-smartcontent-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
    assert headers["x-smartcontent-signature"] == f"sha256={expected.hexdigest()}"
    assert headers["idempotency-key"] == post.idempotency_key
    body = json.loads(raw)
    assert body["text"] == "Grüße 👋" and body["parts"] == ["Grüße 👋"]
    assert body["media_urls"] == ["https://cdn.example/a.png"]
    assert body["target_id"] == str(post.target_id)
    assert body["content_id"] == str(post.content_id)
    assert body["idempotency_key"] == post.idempotency_key

    # The same key again: the receiver answers with the first post, nothing new created.
    again = await publisher.publish(post, _creds(receiver.url))
    assert again.platform_post_id == "wh-1"
    assert receiver.creations[post.idempotency_key] == 1


async def test_wrong_secret_is_an_auth_error(receiver: Receiver, http: httpx.AsyncClient) -> None:
    with pytest.raises(AuthError, match="401"):
        await WebhookPublisher(http, _settings()).publish(_post(), _creds(receiver.url, "nope"))


async def test_plain_2xx_without_json(receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.script.append(Reply(204))
    published = await WebhookPublisher(http, _settings()).publish(_post(), _creds(receiver.url))
    assert published.platform_post_id == "" and published.url is None


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (Reply(429, {"error": "slow down"}, {"Retry-After": "7"}), RetryableError, 7.0),
        (Reply(503, "upstream down"), RetryableError, None),
        (Reply(500, {"message": "boom"}), RetryableError, None),
        (Reply(408), RetryableError, None),
        (Reply(422, {"error": "text too long"}), PermanentError, None),
        (Reply(410, "gone"), PermanentError, None),
        (Reply(403, {"error": "forbidden"}), AuthError, None),
    ],
)
async def test_error_mapping(
    receiver: Receiver,
    http: httpx.AsyncClient,
    reply: Reply,
    error: type[Exception],
    retry_after: float | None,
) -> None:
    receiver.script.append(reply)
    with pytest.raises(error) as caught:
        await WebhookPublisher(http, _settings()).publish(_post(), _creds(receiver.url))
    assert str(reply.status) in str(caught.value)
    if retry_after is not None:
        assert isinstance(caught.value, RetryableError)
        assert caught.value.retry_after == retry_after
    if error is PermanentError:
        assert not isinstance(caught.value, AuthError)
    assert receiver.creations.total() == 0


async def test_an_echoed_secret_is_not_repeated(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.script.append(Reply(400, {"error": f"bad request for {SECRET}"}))
    with pytest.raises(PermanentError) as caught:
        await WebhookPublisher(http, _settings()).publish(_post(), _creds(receiver.url))
    assert SECRET not in str(caught.value) and "***" in str(caught.value)


async def test_lost_answer_is_outcome_unknown(receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.script.append(AcceptThenHang())
    post = _post()
    with pytest.raises(OutcomeUnknown):
        await WebhookPublisher(http, _settings()).publish(post, _creds(receiver.url))
    assert receiver.creations[post.idempotency_key] == 1  # it did arrive


async def test_no_answer_at_all_is_outcome_unknown(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.script.append(Hang())
    with pytest.raises(OutcomeUnknown):
        await WebhookPublisher(http, _settings()).publish(_post(), _creds(receiver.url))


async def test_unreachable_is_retryable(http: httpx.AsyncClient) -> None:
    # A port nothing listens on: refused before anything was sent.
    with pytest.raises(RetryableError):
        await WebhookPublisher(http, _settings()).publish(_post(), _creds("http://127.0.0.1:9/x"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://localhost:9/hook",
    ],
)
async def test_guard_refuses_private_addresses(url: str) -> None:
    async with outbound.client(_settings(outbound_allow_private_networks=False)) as client:
        with pytest.raises(OutboundBlocked):
            await client.post(url, content=b"{}")
        publisher = WebhookPublisher(client, _settings(outbound_allow_private_networks=False))
        with pytest.raises(PermanentError, match="private"):
            await publisher.publish(_post(), _creds(url))
    problem = await outbound.check_url(url, allow_private=False, schemes=frozenset({"http"}))
    assert problem is not None and "private" in problem


async def test_guard_checks_every_redirect(receiver: Receiver) -> None:
    # The receiver (127.0.0.1) is let through; its redirect to another loopback address
    # is a new connection and is refused before it is made.
    transport = GuardedTransport(
        allow_private=False, allowed=frozenset({ipaddress.ip_address("127.0.0.1")})
    )
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        ok = await client.post(
            f"http://127.0.0.1:{receiver.port}/redirect?to=http://127.0.0.1:{receiver.port}/hook/x",
            content=b"{}",
        )
        assert ok.status_code == 401  # reached the hook (unsigned), through the redirect
        with pytest.raises(OutboundBlocked, match=r"127\.0\.0\.2"):
            await client.post(
                f"http://127.0.0.1:{receiver.port}/redirect?to=http://127.0.0.2:{receiver.port}/",
                content=b"{}",
            )


async def test_check_url_shapes() -> None:
    schemes = frozenset({"https", "http"})
    assert await outbound.check_url("ftp://example.com", allow_private=True, schemes=schemes)
    assert await outbound.check_url("https://u:p@example.com", allow_private=True, schemes=schemes)
    assert (
        await outbound.check_url("http://127.0.0.1:1/x", allow_private=True, schemes=schemes)
        is None
    )
