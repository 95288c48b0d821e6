"""The worker's HTTP, as the CLI, tests and benchmarks reach it (with the CLI's token when set)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from hotline.settings import Settings


def worker_get(settings: Settings, path: str, timeout: float = 30) -> Any:
    """GET from the running worker; JSON decoded unless ``path`` asks for another format."""
    request = urllib.request.Request(f"{settings.web_url}{path}")
    if settings.api_token:
        request.add_header("Authorization", f"Bearer {settings.api_token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
        return json.loads(body) if "json" in response.headers.get("Content-Type", "") else body
