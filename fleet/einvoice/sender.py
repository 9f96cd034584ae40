"""The sender: drains the transmission queue into a provider and records each outcome.

Each round claims a batch of due rows (one short transaction), submits them with at most
``concurrency`` in flight, and records every answer in its own short transaction as it
comes in, so a crash loses at most the answers in flight — and those rows come back when
their lease runs out, to be sent again under the same idempotency key. Database work runs
in worker threads so the event loop never waits on the database.

The lease must outlast the provider's timeout, or a slow but successful send would be
taken by a second worker (harmless thanks to the idempotency key, but wasteful).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from fleet.einvoice.provider import Accepted, Provider, ProviderResult, Rejected, RetryLater
from fleet.einvoice.queue import (
    DEFAULT_POLICY,
    Claim,
    QueueState,
    RetryPolicy,
    claim,
    record_accepted,
    record_failure,
)

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DrainReport:
    claimed: int = 0
    accepted: int = 0
    rejected: int = 0
    retrying: int = 0
    failed: int = 0
    superseded: int = 0  # answers for claims another worker had already taken over
    errors: list[str] = field(default_factory=list)


class Sender:
    def __init__(
        self,
        engine: Engine,
        provider: Provider,
        *,
        concurrency: int = 4,
        batch: int | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("sender concurrency must be at least 1")
        self.engine = engine
        self.provider = provider
        self.concurrency = concurrency
        self.batch = batch or concurrency * 4
        self.policy = policy
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311  (jitter, not secrets)

    async def drain_once(self) -> DrainReport:
        """One round: claim what is due now, send it, record the answers."""
        report = DrainReport()
        claims = await asyncio.to_thread(self._claim)
        report.claimed = len(claims)
        gate = asyncio.Semaphore(self.concurrency)

        async def send(item: Claim) -> None:
            async with gate:
                result = await self._submit(item)
            await asyncio.to_thread(self._record, item, result, report)

        await asyncio.gather(*(send(item) for item in claims))
        return report

    async def drain(self, max_rounds: int = 1000) -> DrainReport:
        """Rounds until nothing is due now (rows waiting for a backoff stay queued)."""
        total = DrainReport()
        for _ in range(max_rounds):
            report = await self.drain_once()
            if report.claimed == 0:
                break
            for name in ("claimed", "accepted", "rejected", "retrying", "failed", "superseded"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.errors.extend(report.errors)
        return total

    async def run(self, stop: asyncio.Event, idle: float = 5.0) -> None:
        """Drain until ``stop`` is set, sleeping ``idle`` seconds when nothing was due."""
        while not stop.is_set():
            try:
                report = await self.drain_once()
            except Exception:  # the database went away: keep the loop, try again later
                log.exception("e-receipt sender round failed")
                report = DrainReport()
            if report.claimed == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle)

    async def _submit(self, item: Claim) -> ProviderResult:
        try:
            return await self.provider.submit(item.submission)
        except Exception as exc:  # a provider bug must not lose the receipt
            log.exception("provider %s raised for %s", self.provider.name, item.submission.key)
            return RetryLater(f"provider error: {exc!r}")

    def _claim(self) -> list[Claim]:
        with self.engine.begin() as conn:
            return claim(conn, self.clock(), self.batch, self.policy)

    def _record(self, item: Claim, result: ProviderResult, report: DrainReport) -> None:
        now = self.clock()
        key = item.submission.key
        with self.engine.begin() as conn:
            if isinstance(result, Accepted):
                done = record_accepted(
                    conn, item, provider=self.provider.name, ref=result.ref, now=now
                )
                state: QueueState | None = QueueState.ACCEPTED if done else None
            else:
                permanent = isinstance(result, Rejected) and result.permanent
                state = record_failure(
                    conn,
                    item,
                    provider=self.provider.name,
                    reason=result.reason,
                    permanent=permanent,
                    now=now,
                    rng=self.rng,
                    policy=self.policy,
                    after=result.after if isinstance(result, RetryLater) else None,
                )
        if state is None:
            report.superseded += 1
        elif state is QueueState.ACCEPTED:
            report.accepted += 1
        elif state is QueueState.REJECTED:
            report.rejected += 1
            report.errors.append(f"{key}: {result}")
            log.warning("receipt %s rejected by %s: %s", key, self.provider.name, result)
        elif state is QueueState.FAILED:
            report.failed += 1
            report.errors.append(f"{key}: {result}")
            log.error("receipt %s failed after %d attempts: %s", key, item.attempt, result)
        else:
            report.retrying += 1
