"""Bearer JWT authentication and role checks for Haven's HTTP APIs.

Tokens carry `sub`, `roles` (list of `Role` values; unknown ones are ignored), `sites` (site
ids the holder may act on; `"*"` means every site) and optionally `org`. They are verified
for signature, `exp`, `iss` and `aud`: HS256 with a shared secret in development, RS256 /
ES256 against the identity provider's JWKS in deployments.

In a router::

    @router.post("/v1/households")
    async def register(principal: PrincipalDep) -> ...

    @router.post("/v1/stock", dependencies=[Depends(require_roles(Role.WAREHOUSE_OPERATOR))])
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, NoReturn

import anyio.to_thread
import jwt
from fastapi import Depends, Request
from prometheus_client import Counter
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.problems import Forbidden, Problem, ServiceUnavailable, Unauthorized
from shared.rate_limits import RateLimiter, RateLimitSettings

__all__ = [
    "DEVELOPMENT_SECRET",
    "AuthSettings",
    "Authenticator",
    "InsecureConfiguration",
    "Principal",
    "PrincipalDep",
    "RefusalHook",
    "Role",
    "current_principal",
    "decode_token",
    "issue_dev_token",
    "refuse_development_secret",
    "require_roles",
]

logger = logging.getLogger(__name__)

DEVELOPMENT_SECRET = "haven-DEVELOPMENT-ONLY-secret-never-use-in-production"  # noqa: S105
ALL_SITES = "*"

UNAUTHENTICATED = Counter(
    "http_unauthenticated_requests_total",
    "Requests refused before anyone was identified (not audited: they cost nothing), by "
    "route template and reason (missing_token, invalid_token, rate_limited).",
    ["service", "route", "reason"],
)
VERIFIED_TOKEN_CACHE_SIZE = 10_000  # distinct tokens kept verified (a few MB at most)


class Role(StrEnum):
    FIELD_STAFF = "field_staff"
    WAREHOUSE_OPERATOR = "warehouse_operator"
    CASEWORKER = "caseworker"
    PROVIDER = "provider"
    MANAGER = "manager"
    ADMIN = "admin"
    # Reviews possible duplicates across sites (four eyes: never their own registrations).
    SUPERVISOR = "supervisor"
    # Sees sensitive cases (counter-trafficking, GBV, sexual exploitation and abuse).
    PROTECTION_FOCAL_POINT = "protection_focal_point"


_ROLE_VALUES = frozenset(role.value for role in Role)

# Highest privilege first; `Principal.primary_role` picks the first one a token holds.
_PRIVILEGE_ORDER = (
    Role.ADMIN,
    Role.MANAGER,
    Role.PROTECTION_FOCAL_POINT,
    Role.SUPERVISOR,
    Role.CASEWORKER,
    Role.WAREHOUSE_OPERATOR,
    Role.FIELD_STAFF,
    Role.PROVIDER,
)


class AuthSettings(BaseSettings):
    """Token verification settings, read from `HAVEN_AUTH_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="HAVEN_AUTH_", extra="ignore")

    mode: Literal["hs256", "jwks"] = Field(
        "hs256", description="`hs256`: shared secret (development); `jwks`: RS256/ES256 keys."
    )
    secret: SecretStr = Field(
        SecretStr(DEVELOPMENT_SECRET), description="HS256 secret; the default is for dev only."
    )
    jwks_url: str | None = Field(None, description="Identity provider's JWKS URL (jwks mode).")
    jwks_timeout_seconds: float = Field(5.0, description="Timeout for fetching the JWKS.")
    jwks_cache_seconds: float = Field(
        300.0,
        gt=0,
        description="How long the identity provider's key set is trusted before it is fetched "
        "again: a key removed there stops verifying tokens within this time.",
    )
    issuer: str = Field("haven-dev", description="Required `iss` claim.")
    audience: str = Field("haven", description="Required `aud` claim.")
    leeway_seconds: int = Field(30, description="Clock skew tolerated on `exp`/`nbf`/`iat`.")

    @property
    def algorithms(self) -> list[str]:
        return ["HS256"] if self.mode == "hs256" else ["RS256", "ES256"]

    @property
    def uses_development_secret(self) -> bool:
        return self.mode == "hs256" and self.secret.get_secret_value() == DEVELOPMENT_SECRET


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified content of a token."""

    sub: str
    roles: frozenset[Role]
    sites: frozenset[str]
    org: str | None = None

    def has_any(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    def can_access_site(self, site_id: str) -> bool:
        """Admins reach every site; everyone else only the sites listed in their token.

        An empty `sites` claim means no site at all, whatever the role. Unrestricted access
        is granted explicitly by the identity provider with `"sites": ["*"]`.
        """
        return Role.ADMIN in self.roles or ALL_SITES in self.sites or site_id in self.sites

    @property
    def primary_role(self) -> Role | None:
        """The highest-privilege role held, recorded in audit entries."""
        return next((role for role in _PRIVILEGE_ORDER if role in self.roles), None)


def _string_list(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid_token(f"The token's '{name}' claim must be a list of strings.")
    return value


def _invalid_token(reason: str) -> Unauthorized:
    challenge = f'Bearer realm="haven", error="invalid_token", error_description="{reason}"'
    return Unauthorized(reason, headers={"WWW-Authenticate": challenge})


def decode_token(
    token: str, settings: AuthSettings, jwks_client: jwt.PyJWKClient | None = None
) -> Principal:
    """Verify `token` and return its principal; `Unauthorized` says why it was refused.

    Blocking in jwks mode when the key set must be fetched: call it from a worker thread.
    """
    return _verify(token, settings, jwks_client)[0]


def _verify(
    token: str, settings: AuthSettings, jwks_client: jwt.PyJWKClient | None = None
) -> tuple[Principal, float]:
    """The principal of a verified token and the time (epoch seconds) it expires."""
    try:
        if settings.mode == "jwks":
            if jwks_client is None:
                raise RuntimeError("jwks mode needs a PyJWKClient")
            key: Any = jwks_client.get_signing_key_from_jwt(token).key
        else:
            key = settings.secret.get_secret_value()
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=settings.algorithms,
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway_seconds,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _invalid_token("The token has expired.") from exc
    except jwt.InvalidAudienceError as exc:
        raise _invalid_token("The token is not meant for Haven (wrong audience).") from exc
    except jwt.InvalidIssuerError as exc:
        raise _invalid_token("The token was issued by an unknown issuer.") from exc
    except jwt.InvalidSignatureError as exc:
        raise _invalid_token("The token's signature is not valid.") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise _invalid_token(f"The token lacks the '{exc.claim}' claim.") from exc
    except jwt.PyJWKClientConnectionError as exc:
        logger.warning("Cannot fetch the JWKS to verify a token: %s", exc)
        raise ServiceUnavailable("Sign-in cannot be checked right now; try again shortly.") from exc
    except (jwt.PyJWKClientError, jwt.PyJWKSetError, jwt.InvalidTokenError) as exc:
        raise _invalid_token("The token is malformed or signed with an unknown key.") from exc

    roles = frozenset(Role(r) for r in _string_list(claims, "roles") if r in _ROLE_VALUES)
    org = claims.get("org")
    principal = Principal(
        sub=str(claims["sub"]),
        roles=roles,
        sites=frozenset(_string_list(claims, "sites")),
        org=org if isinstance(org, str) else None,
    )
    return principal, float(claims["exp"]) + settings.leeway_seconds


class InsecureConfiguration(RuntimeError):
    """A setting fit only for development, found in production: the service refuses to start."""


def refuse_development_secret(settings: AuthSettings, environment: str) -> None:
    """In production, tokens signed with the built-in development secret (anyone can make
    one, admin included) must not be accepted: refuse to start instead."""
    if environment == "production" and settings.uses_development_secret:
        raise InsecureConfiguration(
            "HAVEN_ENVIRONMENT=production with HAVEN_AUTH_MODE=hs256 and the built-in "
            "development secret: set HAVEN_AUTH_SECRET to a secret of your own, or use "
            "HAVEN_AUTH_MODE=jwks with your identity provider."
        )


class _VerifiedTokens:
    """Tokens already verified, until they expire: a field device sends the same token with
    every request, and a signature check (in jwks mode also a hop to a worker thread) per
    request is wasted work. Bounded; the least recently used token is forgotten first.
    ``max_age`` caps how long one stays verified: in jwks mode the key-set lifetime, so a
    token whose key the identity provider removed is checked again within it."""

    def __init__(self, size: int = VERIFIED_TOKEN_CACHE_SIZE, max_age: float | None = None) -> None:
        self.size = size
        self.max_age = max_age
        self._tokens: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def get(self, token: str) -> Principal | None:
        entry = self._tokens.get(token)
        if entry is None:
            return None
        principal, expires = entry
        if time.time() >= expires:
            del self._tokens[token]  # verified again, and refused as expired, by the caller
            return None
        self._tokens.move_to_end(token)
        return principal

    def put(self, token: str, principal: Principal, expires: float) -> None:
        if self.max_age is not None:
            expires = min(expires, time.time() + self.max_age)
        self._tokens[token] = (principal, expires)
        self._tokens.move_to_end(token)
        while len(self._tokens) > self.size:
            self._tokens.popitem(last=False)


def issue_dev_token(
    settings: AuthSettings,
    *,
    sub: str,
    roles: Sequence[Role | str],
    sites: Sequence[str] = (),
    org: str | None = None,
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """An HS256 token for development, tests and demos; refused in jwks mode."""
    if settings.mode != "hs256":
        raise RuntimeError("development tokens can only be issued in hs256 mode")
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": settings.issuer,
        "aud": settings.audience,
        "iat": now,
        "exp": now + ttl,
        "roles": [str(role) for role in roles],
        "sites": list(sites),
    }
    if org is not None:
        claims["org"] = org
    return jwt.encode(claims, settings.secret.get_secret_value(), algorithm="HS256")


# --- FastAPI integration -------------------------------------------------------------------

RefusalHook = Callable[[Request, Problem], Awaitable[None]]
"""Called with every 401/403 before it is raised, e.g. to write an audit entry."""


class Authenticator:
    """Verifies bearer tokens for one app; stored on `app.state.authenticator`."""

    def __init__(
        self,
        settings: AuthSettings | None = None,
        *,
        on_refused: RefusalHook | None = None,
        jwks_client: jwt.PyJWKClient | None = None,
        rate_limits: RateLimitSettings | None = None,
    ) -> None:
        self.settings = settings or AuthSettings()
        self.on_refused = on_refused
        limits = rate_limits or RateLimitSettings()
        self._per_address = RateLimiter(limits.per_address)
        self._per_subject = RateLimiter(limits.per_subject)
        self.jwks_client = jwks_client
        jwks = self.settings.mode == "jwks"
        self._verified = _VerifiedTokens(max_age=self.settings.jwks_cache_seconds if jwks else None)
        if jwks and jwks_client is None:
            if not self.settings.jwks_url:
                raise ValueError("HAVEN_AUTH_JWKS_URL is required in jwks mode")
            # No per-key cache: PyJWKClient's keeps a key forever once seen, even after the
            # identity provider removed it; the key set itself is cached for its lifetime.
            self.jwks_client = jwt.PyJWKClient(
                self.settings.jwks_url,
                cache_keys=False,
                cache_jwk_set=True,
                lifespan=self.settings.jwks_cache_seconds,
                timeout=self.settings.jwks_timeout_seconds,
            )
        if self.settings.uses_development_secret:
            logger.warning(
                "Authentication uses the built-in DEVELOPMENT secret; "
                "set HAVEN_AUTH_SECRET or HAVEN_AUTH_MODE=jwks outside development."
            )

    async def authenticate(self, request: Request) -> Principal:
        """The principal of the request's bearer token, or a refused 401 (429 when the
        caller's address failed too often, or its subject sent too many requests)."""
        address = request.client.host if request.client else "unknown"
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._count_failure(request, address, "missing_token")
            raise Unauthorized(
                "Sign in first: send 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="haven"'},
            )
        token = token.strip()
        principal = self._verified.get(token)
        if principal is None:
            principal = await self._verify_new(request, address, token)
        self._limit_subject(request, principal)  # also kept for audit records of refusals
        return principal

    async def _verify_new(self, request: Request, address: str, token: str) -> Principal:
        # A valid token is honoured even from an address past its limit (a field office
        # behind one NAT address must not be locked out by one misbehaving device).
        try:
            if self.settings.mode == "jwks":  # may fetch keys over the network
                principal, expires = await anyio.to_thread.run_sync(
                    _verify, token, self.settings, self.jwks_client
                )
            else:
                principal, expires = _verify(token, self.settings)
        except Unauthorized:
            self._count_failure(request, address, "invalid_token")
            raise
        self._verified.put(token, principal, expires)
        return principal

    def _count_failure(self, request: Request, address: str, reason: str) -> None:
        """An unauthenticated request: counted, never audited (a loop of them must not
        fill the permanent audit trail); too many from one address is a 429."""
        try:
            self._per_address.hit(address)
        except Problem:
            reason = "rate_limited"
            raise
        finally:
            UNAUTHENTICATED.labels(_service(request), _route(request), reason).inc()

    def _limit_subject(self, request: Request, principal: Principal) -> None:
        request.state.principal = principal  # an over-limit subject's 429 names who it was
        self._per_subject.hit(principal.sub)

    async def refuse(self, request: Request, problem: Problem) -> NoReturn:
        """Tell the hook (an authenticated caller's refusal is audited), then raise
        ``problem``. Hook failures are logged, never surfaced."""
        if self.on_refused is not None:
            try:
                await self.on_refused(request, problem)
            except Exception:
                logger.exception("on_refused hook failed")
        raise problem


def _service(request: Request) -> str:
    return str(getattr(request.app.state, "service", "unknown"))


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def _authenticator(request: Request) -> Authenticator:
    authenticator = getattr(request.app.state, "authenticator", None)
    if not isinstance(authenticator, Authenticator):
        raise RuntimeError("app.state.authenticator is not set; build the app with create_app")
    return authenticator


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the verified caller, or 401 with `WWW-Authenticate: Bearer`."""
    return await _authenticator(request).authenticate(request)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """Dependency factory: the caller if they hold one of `roles`, else 403.

    `admin` is not implied: list it when admins should pass.
    """
    if not roles:
        raise ValueError("require_roles needs at least one role")
    names = ", ".join(roles)

    async def dependency(request: Request, principal: PrincipalDep) -> Principal:
        if not principal.has_any(*roles):
            problem = Forbidden(
                f"This needs one of these roles: {names}.", required_roles=list(roles)
            )
            await _authenticator(request).refuse(request, problem)
        return principal

    return dependency
