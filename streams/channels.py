"""What each channel sends: the request (address, headers, body, signature) for one alert or a digest
of several, and how its answer says whether the message was taken. Pure: no I/O, the clock is given.

Each channel follows its public API:

* ``webhook``: our own JSON ``{"alerts": [...]}``, signed for the receiver with HMAC-SHA256 over
  ``"<timestamp>." + body`` (headers ``X-Hotline-Timestamp``, ``X-Hotline-Signature: sha256=<hex>``);
  a receiver refuses a timestamp outside its replay window (``docs/alerts.md``). Taken: any 2xx.
* ``wecom`` (企业微信/政务微信 group robot): ``msgtype: markdown`` posted to the robot's
  ``webhook/send?key=`` address; content at most 4096 bytes. Taken: ``errcode`` 0.
* ``dingtalk`` (钉钉/浙政钉 custom robot, 加签): ``timestamp`` (ms) and ``sign`` query parameters,
  ``sign`` = urlencode(base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret))); the
  robot refuses a timestamp more than an hour off. ``msgtype: markdown``. Taken: ``errcode`` 0.
* ``feishu`` (飞书 custom bot, 签名校验): ``timestamp`` (s) and ``sign`` in the body, ``sign`` =
  base64(HMAC-SHA256(key=timestamp + "\\n" + secret, msg=b"")); ``msg_type: text``. Taken: ``code`` 0.
* ``sms``: a configurable HTTP gateway, ``{"phones": [...], "text": ..., "alert_ids": [...]}``
  signed like the webhook. Taken: any 2xx.

Secrets, robot keys and phone numbers appear only in the request; :func:`masked` is what logs and
the delivery log may show of a destination.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from hotline.schemas.events import TZ

Channel = Literal["webhook", "wecom", "dingtalk", "feishu", "sms"]
CHANNELS: tuple[Channel, ...] = ("webhook", "wecom", "dingtalk", "feishu", "sms")
# Alerts one message lists at most: a digest line is under 80 bytes, so each stays far inside
# the channel's size limit (企业微信 markdown 4096 bytes, 钉钉 and 飞书 about 20 KB).
PER_MESSAGE: dict[Channel, int] = {"webhook": 200, "wecom": 40, "dingtalk": 100, "feishu": 100, "sms": 20}
LINKED_PER_MESSAGE: dict[Channel, int] = {"webhook": 200, "wecom": 15, "dingtalk": 60, "feishu": 60, "sms": 5}
KIND_LABELS = {
    "alert.overdue": "已逾期",
    "alert.due_soon": "即将到期",
    "alert.supervision_due": "待督办",
    "alert.escalated": "逾期未签收",
}
SUPERVISORS = "*"  # the unit id of the supervisors' channels in HOTLINE_ALERT_CHANNELS
ESCALATED = "escalated"
SIGNATURE_HEADER = "X-Hotline-Signature"
TIMESTAMP_HEADER = "X-Hotline-Timestamp"


@dataclass(frozen=True)
class Destination:
    """One place a unit's alerts go: a channel, its address and credentials, its rate limit."""

    unit_id: str
    channel: Channel
    url: str = field(repr=False)  # a robot's address holds its key
    secret: str = field(default="", repr=False)
    phones: tuple[str, ...] = field(default=(), repr=False)
    kinds: frozenset[str] = frozenset()  # alert types it takes; empty: every type
    per_minute: int = 20
    index: int = 0  # among the unit's destinations: tells two of one channel apart

    @property
    def name(self) -> str:
        """How logs, metrics and the delivery log name it: never its address or secret."""
        return f"{self.unit_id}/{self.channel}/{self.index}"

    def takes(self, alert_type: str) -> bool:
        """Its kinds; none listed: every kind but escalations for a unit, escalations for the supervisors."""
        kind = alert_type.removeprefix("alert.")
        if not self.kinds:
            return (kind == ESCALATED) == (self.unit_id == SUPERVISORS)
        return kind in self.kinds or alert_type in self.kinds

    def receives(self, alert: Mapping[str, Any]) -> bool:
        """An alert of its unit (the supervisors': of every unit) and of a kind it takes."""
        return self.unit_id in (SUPERVISORS, alert["unit_id"]) and self.takes(str(alert["type"]))


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def masked(text: str) -> str:
    """A string with nothing after its first 4 characters: enough to tell two apart in a log."""
    return text[:4] + "…" if len(text) > 4 else "…"


def line(alert: Mapping[str, Any]) -> str:
    """One alert as one line: order, what, deadline (local time). Alerts carry no personal data."""
    due = datetime.fromisoformat(str(alert["due_at"])).astimezone(TZ).strftime("%Y-%m-%d %H:%M")
    what = KIND_LABELS.get(str(alert["type"]), str(alert["type"]))
    unit = f"{alert['unit_id']} " if alert["type"] == "alert.escalated" else ""  # for the supervisors
    return f"{unit}{alert['order_id']} {what} 时限 {due}"


def title(alerts: Sequence[Mapping[str, Any]]) -> str:
    units = {str(a["unit_id"]) for a in alerts}
    unit = units.pop() if len(units) == 1 else f"{len(units)} 个单位"
    if len(alerts) == 1:
        return f"12345 工单提醒 · {unit}"
    return f"12345 工单提醒汇总 · {unit} · {len(alerts)} 条"


Link = Callable[[Mapping[str, Any]], str]  # an alert's signed 签收 link


def text(alerts: Sequence[Mapping[str, Any]], link: Link | None = None) -> str:
    """The plain text of a message: the title, then one line per alert (with its 签收 link)."""
    return "\n".join([title(alerts), *(line(a) + (f" 签收 {link(a)}" if link else "") for a in alerts)])


def markdown(alerts: Sequence[Mapping[str, Any]], link: Link | None = None) -> str:
    return "\n".join(
        [f"**{title(alerts)}**", *(f"> {line(a)}" + (f" [签收]({link(a)})" if link else "") for a in alerts)]
    )


def ack_signature(secret: str, alert_id: str, unit_id: str) -> str:
    """What a 签收 link is signed with: only the notifier that holds the secret can make one, so a
    unit can sign for its own alerts and no one can sign for another's (128 bits of HMAC-SHA256)."""
    return hmac.new(secret.encode(), f"{alert_id}|{unit_id}".encode(), hashlib.sha256).hexdigest()[:32]


def ack_links(base_url: str, secret: str) -> Link:
    """The 签收 link of each alert: ``<base>/ack/<alert id>?unit=<unit>&sig=<signature>``."""

    def link(alert: Mapping[str, Any]) -> str:
        aid, unit = str(alert["alert_id"]), str(alert["unit_id"])
        query = urllib.parse.urlencode({"unit": unit, "sig": ack_signature(secret, aid, unit)})
        return f"{base_url}/ack/{urllib.parse.quote(aid)}?{query}"

    return link


def per_message(channel: Channel, linked: bool) -> int:
    """Alerts one message lists at most; fewer with links (about 130 bytes each: 企业微信's 4096)."""
    return min(PER_MESSAGE[channel], LINKED_PER_MESSAGE[channel]) if linked else PER_MESSAGE[channel]


def hmac_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook's and the SMS gateway's signature: ``sha256=`` hex HMAC over ``timestamp.body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    """钉钉 加签: base64 HMAC-SHA256 keyed by the secret over ``timestamp\\nsecret`` (not yet urlencoded)."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()).decode()


def feishu_sign(secret: str, timestamp_s: str) -> str:
    """飞书 签名校验: ``timestamp\\nsecret`` is the HMAC-SHA256 *key*, over an empty message, base64."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _signed(dest: Destination, body: bytes, now: float, ids: Sequence[str]) -> Request:
    timestamp = str(int(now))
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp, "X-Hotline-Alert-Ids": ",".join(ids)}
    if dest.secret:
        headers[SIGNATURE_HEADER] = hmac_signature(dest.secret, timestamp, body)
    return Request(dest.url, body, headers)


def build(dest: Destination, alerts: Sequence[Mapping[str, Any]], now: float, link: Link | None = None) -> Request:
    """The request that tells ``dest`` about ``alerts`` (one alert, or a digest of several), at ``now``;
    with ``link``, each alert carries its 签收 link (the webhook's as ``ack_url``)."""
    if not alerts:
        raise ValueError("a message lists at least one alert")
    ids = [str(a["alert_id"]) for a in alerts]
    json_headers = {"Content-Type": "application/json"}
    if dest.channel == "webhook":
        listed = [{**a, "ack_url": link(a)} if link else dict(a) for a in alerts]
        return _signed(dest, _json({"alerts": listed}), now, ids)
    if dest.channel == "sms":
        body = _json({"phones": list(dest.phones), "text": text(alerts, link), "alert_ids": ids})
        return _signed(dest, body, now, ids)
    if dest.channel == "wecom":
        body = _json({"msgtype": "markdown", "markdown": {"content": markdown(alerts, link)}})
        return Request(dest.url, body, json_headers)
    if dest.channel == "dingtalk":
        url = dest.url
        if dest.secret:
            timestamp = str(int(now * 1000))
            query = urllib.parse.urlencode({"timestamp": timestamp, "sign": dingtalk_sign(dest.secret, timestamp)})
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        body = _json({"msgtype": "markdown", "markdown": {"title": title(alerts), "text": markdown(alerts, link)}})
        return Request(url, body, json_headers)
    if dest.channel == "feishu":
        payload: dict[str, Any] = {"msg_type": "text", "content": {"text": text(alerts, link)}}
        if dest.secret:
            timestamp = str(int(now))
            payload = {"timestamp": timestamp, "sign": feishu_sign(dest.secret, timestamp), **payload}
        return Request(dest.url, _json(payload), json_headers)
    raise ValueError(f"unknown channel {dest.channel!r}")


def accepted(channel: Channel, status: int, body: bytes) -> tuple[bool, str]:
    """Whether the answer says the message was taken, and if not why (no secret is ever in it).

    The robots answer HTTP 200 to a refused message and say so in the body: 企业微信 and 钉钉
    ``errcode``, 飞书 ``code`` (0: taken)."""
    if not 200 <= status < 300:
        return False, f"HTTP {status}"
    if channel in ("webhook", "sms"):
        return True, ""
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return False, "answer is not JSON"
    code = answer.get("code" if channel == "feishu" else "errcode") if isinstance(answer, dict) else None
    if code == 0:
        return True, ""
    message = str(answer.get("msg" if channel == "feishu" else "errmsg", ""))[:120] if isinstance(answer, dict) else ""
    return False, f"code {code}: {message}"
