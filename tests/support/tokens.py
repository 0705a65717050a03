"""The one token helper of the tests: development JWTs per role and site, their headers, and a
loopback JWKS server for the RS256/ES256 mode."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from shared.auth import AuthSettings, Role, issue_dev_token


def token(
    *roles: Role | str,
    sites: Iterable[str] = (),
    sub: str | None = None,
    org: str | None = None,
    ttl: timedelta = timedelta(hours=12),
    settings: AuthSettings | None = None,
) -> str:
    """A development (HS256) token; without ``sub`` each call is a different user."""
    first = str(roles[0]) if roles else "user"
    return issue_dev_token(
        settings or AuthSettings(),
        sub=sub or f"{first}-{uuid.uuid4().hex[:6]}",
        roles=list(roles),
        sites=list(sites),
        org=org,
        ttl=ttl,
    )


def bearer(value: str) -> dict[str, str]:
    """The Authorization header carrying ``value``."""
    return {"Authorization": f"Bearer {value}"}


def auth_headers(
    *roles: Role | str,
    sites: Iterable[str] = (),
    sub: str | None = None,
    org: str | None = None,
    ttl: timedelta = timedelta(hours=12),
    settings: AuthSettings | None = None,
) -> dict[str, str]:
    """The headers of a request by a user with ``roles`` at ``sites`` (see :func:`token`)."""
    return bearer(token(*roles, sites=sites, sub=sub, org=org, ttl=ttl, settings=settings))


class JwksServer:
    """A private key per algorithm and a loopback HTTP server publishing the public halves."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        keys = [
            {**RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True), "kid": "rsa-1"},
            {**ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True), "kid": "ec-1"},
        ]
        self.keys = keys  # what the identity provider publishes now (tests may change it)
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, kid: str = "rsa-1", **claims: Any) -> str:
        """A token signed with the key ``kid`` names (``ec-…``: ES256, otherwise RS256)."""
        now = datetime.now(UTC)
        payload: dict[str, Any] = {
            "sub": "caseworker-9",
            "iss": "https://idp.example",
            "aud": "haven",
            "exp": now + timedelta(minutes=5),
            "roles": ["caseworker"],
            "sites": ["s1"],
            **claims,
        }
        if kid.startswith("ec"):
            return jwt.encode(payload, self.ec, algorithm="ES256", headers={"kid": kid})
        return jwt.encode(payload, self.rsa, algorithm="RS256", headers={"kid": kid})

    def rotate(self) -> None:
        """The identity provider replaces its RSA key: ``rsa-1`` is removed, ``rsa-2`` published
        (tokens signed with ``rsa-1`` must stop verifying)."""
        replacement = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys = [
            *(k for k in self.keys if k["kid"] != "rsa-1"),
            {**RSAAlgorithm.to_jwk(replacement.public_key(), as_dict=True), "kid": "rsa-2"},
        ]

    def shutdown(self) -> None:
        self.server.shutdown()
