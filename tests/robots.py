"""Local HTTP receivers that check what each real API checks: payload shape, signature, timestamp
window, rate limit; and can be down (connection refused by a 503) for a while.

One :class:`Robot` serves every channel on its own path (``/webhook``, ``/wecom``, ``/dingtalk``,
``/feishu``, ``/sms``), each answering the way that service answers a good or a refused message.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

SECRET = "SECtest-secret-0123456789"
KEY = "robot-key-abc"
WEBHOOK_WINDOW_S = 300.0  # the replay window docs/alerts.md asks webhook receivers to keep
ROBOT_WINDOW_S = 3600.0  # 钉钉 and 飞书 refuse a timestamp more than an hour off


@dataclass
class Message:
    channel: str
    alert_ids: list[str]
    payload: dict[str, Any]


@dataclass
class Robot:
    clock: Callable[[], float] = time.time
    per_minute: int = 20
    down: bool = False
    delay_s: float = 0.0  # how long each answer takes (a slow robot keeps a burst in flight)
    turned_away: int = 0  # requests answered 503 while down
    messages: list[Message] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why each refused request was refused
    sent: dict[str, deque[float]] = field(default_factory=dict)
    server: TestServer | None = None

    async def start(self, port: int = 0) -> Robot:
        app = web.Application()
        for channel in ("webhook", "wecom", "dingtalk", "feishu", "sms"):
            app.router.add_post(f"/{channel}", self._handler(channel))
        self.server = TestServer(app, host="127.0.0.1", port=port)
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def url(self, channel: str) -> str:
        assert self.server is not None
        query = f"?key={KEY}" if channel == "wecom" else "?access_token=tok" if channel == "dingtalk" else ""
        return str(self.server.make_url(f"/{channel}")) + query

    def delivered_ids(self) -> list[str]:
        return [aid for m in self.messages for aid in m.alert_ids]

    def _handler(self, channel: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            if self.down:
                self.turned_away += 1
                return web.Response(status=503)
            body = await request.read()
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            check = getattr(self, f"_{channel}")
            problem, ids, payload = check(request, body)
            if problem is None and self._over_limit(channel):
                problem = "rate limit"
            if problem is not None:
                self.refused.append(f"{channel}: {problem}")
                return self._refusal(channel, problem)
            self.messages.append(Message(channel, ids, payload))
            return self._ok(channel)

        return handle

    def _over_limit(self, channel: str) -> bool:
        """The robots' limit: at most ``per_minute`` messages in any 60 s."""
        now = self.clock()
        window = self.sent.setdefault(channel, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.per_minute:
            return True
        window.append(now)
        return False

    @staticmethod
    def _ok(channel: str) -> web.Response:
        if channel in ("wecom", "dingtalk"):
            return web.json_response({"errcode": 0, "errmsg": "ok"})
        if channel == "feishu":
            return web.json_response({"code": 0, "msg": "success", "data": {}})
        return web.Response(status=204)

    @staticmethod
    def _refusal(channel: str, problem: str) -> web.Response:
        """As each service refuses: the robots with HTTP 200 and a code, ours with 4xx."""
        if channel in ("wecom", "dingtalk"):
            code = 45009 if problem == "rate limit" else 310000
            return web.json_response({"errcode": code, "errmsg": problem})
        if channel == "feishu":
            return web.json_response({"code": 9499 if problem == "rate limit" else 19021, "msg": problem})
        return web.Response(status=429 if problem == "rate limit" else 401, text=problem)

    # -- what each API checks -------------------------------------------------------------------
    def _signed_json(self, request: web.Request, body: bytes) -> tuple[str | None, dict[str, Any]]:
        timestamp = request.headers.get("X-Hotline-Timestamp", "")
        signature = request.headers.get("X-Hotline-Signature", "")
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > WEBHOOK_WINDOW_S:
            return "timestamp outside the replay window", {}
        expected = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return "bad signature", {}
        return None, json.loads(body)

    def _webhook(self, request: web.Request, body: bytes) -> tuple[str | None, list[str], dict[str, Any]]:
        problem, payload = self._signed_json(request, body)
        if problem:
            return problem, [], {}
        alerts = payload.get("alerts")
        if not isinstance(alerts, list) or not alerts or not all("alert_id" in a and "unit_id" in a for a in alerts):
            return "body is not {alerts: [alert, ...]}", [], {}
        return None, [a["alert_id"] for a in alerts], payload

    def _sms(self, request: web.Request, body: bytes) -> tuple[str | None, list[str], dict[str, Any]]:
        problem, payload = self._signed_json(request, body)
        if problem:
            return problem, [], {}
        if not payload.get("phones") or not isinstance(payload.get("text"), str) or not payload.get("alert_ids"):
            return "body lacks phones, text or alert_ids", [], {}
        return None, list(payload["alert_ids"]), payload

    def _wecom(self, request: web.Request, body: bytes) -> tuple[str | None, list[str], dict[str, Any]]:
        if request.query.get("key") != KEY:
            return "invalid webhook url", [], {}
        payload = json.loads(body)
        content = payload.get("markdown", {}).get("content")
        if payload.get("msgtype") != "markdown" or not isinstance(content, str):
            return "not a markdown message", [], {}
        if len(content.encode()) > 4096:
            return "markdown.content exceeds 4096 bytes", [], {}
        return None, _ids_in(content), payload

    def _dingtalk(self, request: web.Request, body: bytes) -> tuple[str | None, list[str], dict[str, Any]]:
        timestamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
        if request.query.get("access_token") != "tok":
            return "token is not exist", [], {}
        if not timestamp.isdigit() or abs(self.clock() * 1000 - int(timestamp)) > ROBOT_WINDOW_S * 1000:
            return "timestamp is out of range", [], {}
        string_to_sign = f"{timestamp}\n{SECRET}".encode()
        expected = base64.b64encode(hmac.new(SECRET.encode(), string_to_sign, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(sign, expected):  # aiohttp has already urldecoded the query
            return "sign not match", [], {}
        payload = json.loads(body)
        md = payload.get("markdown", {})
        if payload.get("msgtype") != "markdown" or not md.get("title") or not isinstance(md.get("text"), str):
            return "not a markdown message with title and text", [], {}
        return None, _ids_in(md["text"]), payload

    def _feishu(self, request: web.Request, body: bytes) -> tuple[str | None, list[str], dict[str, Any]]:
        payload = json.loads(body)
        timestamp = str(payload.get("timestamp", ""))
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > ROBOT_WINDOW_S:
            return "timestamp out of range", [], {}
        key = f"{timestamp}\n{SECRET}".encode()
        expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(str(payload.get("sign", "")), expected):
            return "sign match fail or timestamp is not within one hour from current time", [], {}
        if payload.get("msg_type") != "text" or not isinstance(payload.get("content", {}).get("text"), str):
            return "params error, msg_type text needs content.text", [], {}
        return None, _ids_in(payload["content"]["text"]), payload


ORDER_PREFIX = "XT"  # the order ids the tests use: an alert is found in a robot's text by its order


def _ids_in(content: str) -> list[str]:
    """Robots show text, not alert ids: the tests' orders are named ``XT<alert id>``."""
    return [word.removeprefix(ORDER_PREFIX) for word in content.split() if word.startswith(ORDER_PREFIX)]
