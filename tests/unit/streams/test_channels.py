"""Each channel's request against a local receiver that checks what the real API checks."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from hotline.schemas.events import TZ
from hotline.streams.channels import (
    CHANNELS,
    PER_MESSAGE,
    Channel,
    Destination,
    accepted,
    ack_links,
    ack_signature,
    build,
    masked,
    per_message,
)
from tests.robots import SECRET, Robot

DUE = "2019-11-20T17:00:00+08:00"
ACK_SECRET = "ack-secret"
LINK = re.compile(r"https://hotline\.example/notify/ack/(\w+)\?unit=(\w+)&sig=(\w+)")
EMITTED = datetime.now(TZ).isoformat()  # once per run: an alert built twice is the same alert


def alert(n: int, unit: str = "yuhu", kind: str = "alert.overdue") -> dict[str, Any]:
    aid = f"a{n:031d}"
    return {
        "type": kind,
        "event_id": aid,
        "alert_id": aid,
        "order_id": f"XT{aid}",
        "unit_id": unit,
        "due_at": DUE,
        "emitted_at": EMITTED,
        "occurred_at": DUE,
    }


def destination(robot: Robot, channel: Channel, secret: str = SECRET) -> Destination:
    return Destination("yuhu", channel, robot.url(channel), secret=secret, phones=("13800000000",))


async def post(
    robot: Robot, channel: Channel, alerts: list[dict[str, Any]], now: float, secret: str = SECRET, linked: bool = False
) -> bool:
    link = ack_links("https://hotline.example/notify", ACK_SECRET) if linked else None
    request = build(destination(robot, channel, secret), alerts, now, link)
    async with aiohttp.ClientSession() as session, session.post(
        request.url, data=request.body, headers=request.headers
    ) as response:
        ok, _ = accepted(channel, response.status, await response.read())
        return ok


@pytest.fixture
async def robot() -> Any:
    r = await Robot().start()
    yield r
    await r.close()


@pytest.mark.parametrize("channel", CHANNELS)
async def test_one_alert_is_taken_with_its_id(robot: Robot, channel: Channel) -> None:
    assert await post(robot, channel, [alert(1)], time.time())
    assert robot.delivered_ids() == [alert(1)["alert_id"]] and robot.refused == []


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_full_digest_is_taken_with_every_id(robot: Robot, channel: Channel) -> None:
    alerts = [alert(n) for n in range(PER_MESSAGE[channel])]
    assert await post(robot, channel, alerts, time.time())
    assert robot.delivered_ids() == [a["alert_id"] for a in alerts]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_full_digest_with_signed_acknowledgement_links_is_taken(robot: Robot, channel: Channel) -> None:
    alerts = [alert(n) for n in range(per_message(channel, linked=True))]
    assert await post(robot, channel, alerts, time.time(), linked=True)
    links = LINK.findall(json.dumps(robot.messages[0].payload, ensure_ascii=False))
    assert sorted(aid for aid, _, _ in links) == sorted(a["alert_id"] for a in alerts)
    assert all(sig == ack_signature(ACK_SECRET, aid, unit) for aid, unit, sig in links)


@pytest.mark.parametrize("channel", ["webhook", "dingtalk", "feishu", "sms"])
async def test_a_wrong_secret_is_refused(robot: Robot, channel: Channel) -> None:
    assert not await post(robot, channel, [alert(1)], time.time(), secret="SECwrong")
    assert robot.messages == [] and len(robot.refused) == 1


@pytest.mark.parametrize(("channel", "skew_s"), [("webhook", 301), ("sms", 301), ("dingtalk", 3601), ("feishu", 3601)])
async def test_a_timestamp_outside_the_window_is_refused(robot: Robot, channel: Channel, skew_s: float) -> None:
    assert not await post(robot, channel, [alert(1)], time.time() - skew_s)
    assert robot.messages == [] and "time" in robot.refused[0]


async def test_wecom_refuses_another_robots_key(robot: Robot) -> None:
    dest = Destination("yuhu", "wecom", robot.url("wecom").replace("key=", "key=x"))
    request = build(dest, [alert(1)], time.time())
    async with aiohttp.ClientSession() as session, session.post(request.url, data=request.body) as response:
        assert not accepted("wecom", response.status, await response.read())[0]


def test_robots_refuse_with_http_200_and_a_code() -> None:
    assert accepted("dingtalk", 200, b'{"errcode": 310000, "errmsg": "sign not match"}') == (
        False,
        "code 310000: sign not match",
    )
    assert accepted("feishu", 200, b'{"code": 9499, "msg": "too many request"}')[0] is False
    assert accepted("wecom", 200, b'{"errcode": 0, "errmsg": "ok"}') == (True, "")


def test_a_destination_is_named_without_its_address_or_secret() -> None:
    dest = Destination("yuhu", "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K123", secret="S")
    shown = f"{dest.name} {dest!r}"
    assert "K123" not in shown and "secret='S'" not in shown and masked("K123456") == "K123…"


def test_a_destination_takes_only_its_kinds() -> None:
    dest = Destination("yuhu", "sms", "http://x", kinds=frozenset({"overdue"}))
    assert dest.takes("alert.overdue") and not dest.takes("alert.due_soon")


def test_a_supervisors_digest_of_escalations_names_each_unit() -> None:
    from hotline.streams.channels import text

    escalated = [alert(1, kind="alert.escalated"), alert(2, unit="police", kind="alert.escalated")]
    lines = text(escalated).splitlines()
    assert "2 个单位" in lines[0] and lines[1].startswith("yuhu XT") and lines[2].startswith("police XT")


def test_a_message_lists_at_least_one_alert() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build(Destination("yuhu", "webhook", "http://x"), [], time.time())
