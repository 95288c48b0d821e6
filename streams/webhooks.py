"""Optional webhook per unit: each alert this worker sends is POSTed as JSON, with retries and backoff.

Only the worker that sent an alert posts it, so N workers do not post N times.
Receivers should still de-duplicate on ``alert_id``: a worker killed between the
Kafka send and the POST leaves that alert on the topic and SSE stream only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


class WebhookDelivery:
    def __init__(
        self,
        urls: Mapping[str, str],
        attempts: int = 6,
        first_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.urls = dict(urls)
        self.attempts = attempts
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.delivered = 0
        self.failed = 0

    def offer(self, alert: dict[str, Any]) -> None:
        if alert["unit_id"] in self.urls:
            self.queue.put_nowait(alert)

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            while True:
                alert = await self.queue.get()
                await self.deliver(session, alert)

    async def deliver(self, session: aiohttp.ClientSession, alert: dict[str, Any]) -> bool:
        """POST until a 2xx answer; back off exponentially between attempts, then give up loudly."""
        url = self.urls[alert["unit_id"]]
        delay = self.first_delay_s
        for attempt in range(1, self.attempts + 1):
            try:
                async with session.post(url, json=alert, headers={"X-Hotline-Alert-Id": alert["alert_id"]}) as r:
                    if 200 <= r.status < 300:
                        self.delivered += 1
                        return True
                    reason = f"HTTP {r.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
            log.warning(
                "webhook for unit %s, alert %s: attempt %d/%d failed (%s)",
                alert["unit_id"],
                alert["alert_id"],
                attempt,
                self.attempts,
                reason,
            )
            if attempt < self.attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay_s)
        self.failed += 1
        log.error(
            "webhook for unit %s gave up on alert %s after %d attempts",
            alert["unit_id"],
            alert["alert_id"],
            self.attempts,
        )
        return False
