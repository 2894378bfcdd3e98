"""The metrics collector against the X fake's real endpoint (GET /2/tweets/:id with
public_metrics) on real Postgres, time driven by the test's clock: snapshots follow the
1 h / 6 h / 24 h / 72 h / 7 d steps, a 500 keeps earlier snapshots and is retried after the
back-off, a revoked token marks the account NEEDS_RECONNECT, and two collectors at once
never fetch one target twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from app.models import AuditEntry, SocialAccount
from app.platforms.publishing import Credentials, Metrics
from app.services.analytics import metrics, metrics_collector
from app.services.analytics.metrics_collector import Collector, CollectReport, collect_due
from app.services.publishing import refresher
from app.services.publishing.accounts import seal
from app.state import AppState
from tests.analytics.conftest import T0, Clock, schedule_of, seed_target, snapshots_of, x_metrics
from tests.platforms.fakes import TOKEN, FakePlatforms, Fault

H = timedelta(hours=1)


async def pass_at(collector: Collector, clock: Clock, offset: timedelta) -> CollectReport:
    """One collector pass at T0 + offset."""
    clock.at(offset)
    return await collect_due(collector)


def fetches(fake: FakePlatforms, tweet_id: str) -> int:
    return len(fake.requests("GET", f"/2/tweets/{tweet_id}"))


async def test_snapshots_follow_the_decaying_schedule(
    state: AppState, fake: FakePlatforms, collector: Collector, clock: Clock
) -> None:
    seeded = await seed_target(state, fake=fake)
    tweet = seeded.platform_post_id
    steps = [H, 6 * H, 24 * H, 72 * H, 7 * 24 * H]
    # Before the first step: scheduled, nothing fetched.
    report = await pass_at(collector, clock, 30 * timedelta(minutes=1))
    assert report.discovered == 1 and report.collected == []
    schedule = await schedule_of(state, seeded.target_id)
    assert schedule.metrics_step == 0 and schedule.next_metrics_at == T0 + H
    for n, offset in enumerate(steps):
        fake.x_metrics[tweet] = x_metrics(100 * (n + 1), 10 * (n + 1), n, 2 * n)
        clock.at(offset - timedelta(seconds=1))
        assert (await collect_due(collector)).collected == []  # a second early: not yet
        clock.at(offset)
        assert (await collect_due(collector)).collected == [seeded.target_id]
        assert fetches(fake, tweet) == n + 1
    clock.at(30 * 24 * H)
    assert (await collect_due(collector)).collected == []
    snaps = await snapshots_of(state, seeded.target_id)
    assert [s.collected_at - T0 for s in snaps] == steps
    assert [s.step for s in snaps] == [0, 1, 2, 3, 4]
    assert [s.impressions for s in snaps] == [100, 200, 300, 400, 500]
    assert [s.likes for s in snaps] == [10, 20, 30, 40, 50]
    assert [s.comments for s in snaps] == [0, 1, 2, 3, 4]
    assert [s.shares for s in snaps] == [0, 2, 4, 6, 8]  # retweets + quotes
    assert snaps[0].saves == 1 and snaps[0].reach is None and snaps[0].clicks is None
    assert snaps[0].raw["impression_count"] == 100
    assert all(s.workspace_id == seeded.workspace_id for s in snaps)
    assert all(s.content_id == seeded.content_id for s in snaps)
    done = await schedule_of(state, seeded.target_id)
    assert done.metrics_step == 5 and done.next_metrics_at is None and done.lease_id is None


async def test_steps_already_past_are_folded_into_one_collection(
    state: AppState, fake: FakePlatforms, collector: Collector, clock: Clock
) -> None:
    seeded = await seed_target(state, fake=fake)
    clock.at(30 * H)  # found late (an outage): 1 h, 6 h and 24 h are all past
    report = await collect_due(collector)
    assert report.discovered == 1 and report.collected == [seeded.target_id]
    [snap] = await snapshots_of(state, seeded.target_id)
    assert snap.step == 2
    schedule = await schedule_of(state, seeded.target_id)
    assert schedule.metrics_step == 3 and schedule.next_metrics_at == T0 + 72 * H
    assert fetches(fake, seeded.platform_post_id) == 1


async def test_a_500_keeps_earlier_snapshots_and_is_retried_after_the_backoff(
    state: AppState, fake: FakePlatforms, collector: Collector, clock: Clock
) -> None:
    seeded = await seed_target(state, fake=fake)
    tweet = seeded.platform_post_id
    assert (await pass_at(collector, clock, H)).collected == [seeded.target_id]
    fake.fail("GET", f"/2/tweets/{tweet}", Fault(500, body={"title": "Internal Error"}))
    report = await pass_at(collector, clock, 6 * H)
    assert report.retrying == [seeded.target_id] and report.collected == []
    assert len(await snapshots_of(state, seeded.target_id)) == 1  # the 1 h one survives
    schedule = await schedule_of(state, seeded.target_id)
    assert schedule.metrics_step == 1 and schedule.attempts == 1
    assert schedule.next_metrics_at == T0 + 6 * H + timedelta(seconds=60)
    assert schedule.last_error and "500" in schedule.last_error
    # Not before the back-off; then the retry succeeds within the same step.
    assert (await pass_at(collector, clock, 6 * H + timedelta(seconds=59))).retrying == []
    report = await pass_at(collector, clock, 6 * H + timedelta(seconds=60))
    assert report.collected == [seeded.target_id]
    snaps = await snapshots_of(state, seeded.target_id)
    assert [s.step for s in snaps] == [0, 1]
    schedule = await schedule_of(state, seeded.target_id)
    assert schedule.metrics_step == 2 and schedule.attempts == 0 and schedule.last_error is None
    assert fetches(fake, tweet) == 3


async def test_rate_limit_waits_for_retry_after_and_a_step_is_skipped_after_max_attempts(
    state: AppState, fake: FakePlatforms, collector: Collector, clock: Clock
) -> None:
    seeded = await seed_target(state, fake=fake)
    tweet = seeded.platform_post_id
    assert (await pass_at(collector, clock, H)).collected == [seeded.target_id]
    limited = Fault(429, body={"title": "Too Many Requests"}, headers={"retry-after": "900"})
    fake.fail("GET", f"/2/tweets/{tweet}", limited)
    assert (await pass_at(collector, clock, 6 * H)).retrying == [seeded.target_id]
    schedule = await schedule_of(state, seeded.target_id)
    assert schedule.next_metrics_at == T0 + 6 * H + timedelta(seconds=900)
    # Two more failures (METRICS_MAX_ATTEMPTS = 3): the 6 h step is given up, not the rest.
    fake.fail("GET", f"/2/tweets/{tweet}", Fault(503), times=2)
    assert (await pass_at(collector, clock, 7 * H)).retrying == [seeded.target_id]
    assert (await pass_at(collector, clock, 8 * H)).skipped == [seeded.target_id]
    schedule = await schedule_of(state, seeded.target_id)
    assert schedule.metrics_step == 2 and schedule.next_metrics_at == T0 + 24 * H
    assert len(await snapshots_of(state, seeded.target_id)) == 1
    assert (await pass_at(collector, clock, 24 * H)).collected == [seeded.target_id]
    assert [s.step for s in await snapshots_of(state, seeded.target_id)] == [0, 2]


async def test_a_revoked_token_marks_the_account_and_pauses_until_reconnected(
    state: AppState, fake: FakePlatforms, collector: Collector, clock: Clock
) -> None:
    seeded = await seed_target(state, fake=fake)
    assert (await pass_at(collector, clock, H)).collected == [seeded.target_id]
    async with state.session_factory() as session, session.begin():
        account = await session.get(SocialAccount, seeded.account_id)
        assert account is not None
        account.credentials = seal(state.keys.box, Credentials(access_token="revoked-by-user"))
    async with state.hub.subscribe(refresher.channel(seeded.workspace_id)) as events:
        report = await pass_at(collector, clock, 6 * H)
        event = await events.get(wait=10)
    assert report.paused == [seeded.target_id]
    assert report.needs_reconnect == [seeded.account_id]
    assert isinstance(event, dict) and event["status"] == "NEEDS_RECONNECT"
    assert event["account_id"] == str(seeded.account_id)
    async with state.session_factory() as session:
        account = await session.get(SocialAccount, seeded.account_id)
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.target_id == str(seeded.account_id))
        )
    assert account is not None and account.status == "NEEDS_RECONNECT"
    assert account.status_reason and "revoked-by-user" not in account.status_reason
    assert entry is not None and entry.action == "accountNeedsReconnect"
    assert entry.actor_label == metrics_collector.ACTOR
    assert len(await snapshots_of(state, seeded.target_id)) == 1  # kept
    schedule = await schedule_of(state, seeded.target_id)
    assert schedule.metrics_step == 1 and schedule.attempts == 0
    assert schedule.next_metrics_at == T0 + 7 * H  # looked at again after the pause
    # Still not reconnected an hour later: no request is sent with the dead token.
    sent = fetches(fake, seeded.platform_post_id)
    assert (await pass_at(collector, clock, 7 * H)).paused == [seeded.target_id]
    assert fetches(fake, seeded.platform_post_id) == sent
    # Reconnected: collection resumes (the 6 h step, late).
    async with state.session_factory() as session, session.begin():
        account = await session.get(SocialAccount, seeded.account_id)
        assert account is not None
        account.status = "CONNECTED"
        account.credentials = seal(state.keys.box, Credentials(access_token=TOKEN))
    assert (await pass_at(collector, clock, 9 * H)).collected == [seeded.target_id]
    assert [s.step for s in await snapshots_of(state, seeded.target_id)] == [0, 1]


async def test_two_collectors_at_once_never_fetch_a_target_twice(
    state: AppState, fake: FakePlatforms, collector: Collector
) -> None:
    seeded = [await seed_target(state, fake=fake) for _ in range(12)]
    small = state.settings.model_copy(update={"metrics_batch": 2, "metrics_concurrency": 2})
    first = Collector(
        state.session_factory, small, state.keys.box, collector.http, None, Clock().at(H)
    )
    second = Collector(
        state.session_factory, small, state.keys.box, collector.http, None, Clock().at(H)
    )
    a, b = await asyncio.gather(collect_due(first), collect_due(second))
    assert a.collected and b.collected  # both took part
    assert set(a.collected).isdisjoint(b.collected)
    assert sorted(a.collected + b.collected) == sorted(s.target_id for s in seeded)
    assert [fetches(fake, s.platform_post_id) for s in seeded] == [1] * 12
    assert [len(await snapshots_of(state, s.target_id)) for s in seeded] == [1] * 12


async def test_a_collector_whose_lease_ran_out_writes_nothing(
    state: AppState, fake: FakePlatforms
) -> None:
    seeded = await seed_target(state, fake=fake)
    now = T0 + H
    async with state.session_factory() as session, session.begin():
        assert await metrics.discover(session, now, 10) == 1
        [stale] = await metrics.claim(session, now, 30, 10)
    async with state.session_factory() as session, session.begin():
        assert await metrics.claim(session, now + timedelta(seconds=29), 30, 10) == []  # held
    # The first collector hung past its lease: another claims the target and collects it.
    later = now + timedelta(seconds=30)
    async with state.session_factory() as session, session.begin():
        [fresh] = await metrics.claim(session, later, 30, 10)
    assert fresh.target_id == seeded.target_id and fresh.lease_id != stale.lease_id
    async with state.session_factory() as session, session.begin():
        assert await metrics.collected(session, stale, Metrics(likes=1), later) is None
        assert await metrics.failed(session, state.settings, stale, later, "late") == "lost-lease"
    async with state.session_factory() as session, session.begin():
        assert await metrics.collected(session, fresh, Metrics(likes=2), later) is not None
    assert [s.likes for s in await snapshots_of(state, seeded.target_id)] == [2]
    schedule = await schedule_of(state, seeded.target_id)
    assert schedule.lease_id is None and schedule.last_error is None
