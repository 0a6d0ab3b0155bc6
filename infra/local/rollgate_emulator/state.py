"""Settings and the emulator's own records (what moto does not keep)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

log = logging.getLogger("rollgate-emulator")


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 5001
    lambda_endpoint: str = "http://127.0.0.1:9000"
    minute_seconds: float = 60.0
    hook_timeout_seconds: float = 3600.0


settings = Settings()


def configure(new: Settings) -> None:
    global settings
    settings = new


class Records:
    """Thread-safe lists the control endpoints expose."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.invocations: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self._reset_hooks: list[Callable[[], None]] = []

    def add_invocation(self, record: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.invocations.append(record)
        return record

    def add_event(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(event)

    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        with self.lock:
            self.invocations.clear()
            self.events.clear()
        for hook in self._reset_hooks:
            hook()
        log.info("emulator records reset")


records = Records()


def now() -> float:
    return time.time()
