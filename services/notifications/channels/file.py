"""The file channel for local runs: one JSON line per message, appended to a file.

It stands in for every channel in development (``make run``), so what would have been sent
can be read in ``.haven/notifications/messages.jsonl``. The file is the message sink, not a
log: it holds numbers and texts like the real channels would. It honours the idempotency
key: a key already in the file is not written again.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

from services.notifications.channels.base import OutgoingMessage
from shared.clock import Clock


class FileTransport:
    def __init__(self, path: str | Path, *, clock: Clock) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = asyncio.Lock()
        self._written: set[str] | None = None

    async def send(self, message: OutgoingMessage) -> None:
        async with self._lock:
            written = await asyncio.to_thread(self._load) if self._written is None else None
            if written is not None:
                self._written = written
            assert self._written is not None
            key = str(message.idempotency_key)
            if key in self._written:
                return
            line = json.dumps(
                {
                    "idempotency_key": key,
                    "channel": message.channel,
                    "to": message.address,
                    "language": message.language,
                    "subject": message.subject,
                    "text": message.body,
                    "event_type": message.event_type,
                    "event_id": str(message.event_id),
                    "written_at": _iso(self.clock()),
                },
                ensure_ascii=False,
            )
            await asyncio.to_thread(self._append, line)
            self._written.add(key)

    def _load(self) -> set[str]:
        if not self.path.exists():
            return set()
        keys = set()
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    keys.add(json.loads(line)["idempotency_key"])
                except (ValueError, KeyError):
                    continue  # a line cut short by a crash
        return keys

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    async def aclose(self) -> None:
        return None


def _iso(moment: datetime) -> str:
    return moment.isoformat()
