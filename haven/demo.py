"""Demo reference data for local runs, loaded through the services' own APIs.

Each ``deploy/local/demo/<service>.yaml`` lists requests ``{method, path, body}``; they are
sent with an admin development token. A 409 means the record is already there (a second
``make run`` keeps the data), so loading is repeatable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

DEMO_DIR = Path(__file__).resolve().parents[1] / "deploy" / "local" / "demo"


def demo_requests(service: str) -> list[dict[str, Any]]:
    path = DEMO_DIR / f"{service}.yaml"
    if not path.exists():
        return []
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(loaded, list):
        raise ValueError(f"{path} must hold a list of requests")
    return loaded


def load_demo_data(base_urls: dict[str, str], token: str) -> dict[str, int]:
    """Send every service's demo requests; return how many were created per service."""
    created: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=30, headers=headers) as client:
        for service, base in base_urls.items():
            count = 0
            for request in demo_requests(service):
                response = client.request(
                    request.get("method", "POST"), base + request["path"], json=request.get("body")
                )
                if response.status_code == 409:
                    continue
                if response.status_code >= 400:
                    raise RuntimeError(
                        f"demo data for {service}: {request['path']} answered "
                        f"{response.status_code}: {response.text[:300]}"
                    )
                count += 1
            created[service] = count
    return created
