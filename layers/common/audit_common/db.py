"""Data access: one small interface over the database's SQL API, two implementations.

Every function in the `audit` schema returns jsonb, so both transports give Python the same
JSON values. `PostgresTransport` (psycopg 3) is used when a database URL is configured; it
never uses server-side prepared statements, so it works through Supavisor's transaction
pooler. `PostgrestTransport` calls the same functions over Supabase's REST API (`/rpc/`),
for deployments that only hold the project URL and service role key.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.types.json import set_json_loads
from pydantic import BaseModel, ConfigDict

from audit_common.errors import AuditError, ConfigurationError, InvalidInput, ServiceUnavailable
from audit_common.observability import logger
from audit_common.settings import Settings, get_settings

if TYPE_CHECKING:
    import httpx

SCHEMA: Final = "audit"
_T = TypeVar("_T")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Transport(Protocol):
    """Calls one SQL API function by name with named arguments and returns its JSON result."""

    def call(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run `audit.<function>(name => value, ...)` and return the decoded jsonb result."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class DatabaseUser(BaseModel):
    """A signed-in user a read runs as, so the database's row level security decides what it sees.

    `claims` are what `auth.jwt()` returns inside the database (Supabase's `request.jwt.claims`);
    `token` is the user's own access token, which the PostgREST transport forwards instead of the
    service key (PostgREST then takes the role and claims from it).
    """

    model_config = ConfigDict(frozen=True)

    claims: dict[str, Any]
    token: str | None = None


AUTHENTICATED_ROLE: Final = "authenticated"
"""Supabase's role for a signed-in user; RLS policies are written for it."""


def as_user(transport: Transport, user: DatabaseUser) -> Transport:
    """The same SQL API, called as `user` (role `authenticated` with their claims) instead of the service role.

    Only the two real transports can do this; anything else is refused rather than silently
    reading with the service role's wider view.
    """
    if isinstance(transport, PostgresTransport | PostgrestTransport):
        return transport.as_user(user)
    raise ConfigurationError(f"{type(transport).__name__} cannot run a call as a signed-in user")


def _check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a SQL API identifier: {name!r}")
    return name


def _orjson_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class PostgresTransport:
    """psycopg 3 over one lazily opened connection, reused across Lambda invocations.

    Each call is one statement in autocommit mode (one round trip) or, with a role to assume,
    one short transaction. A dropped connection is reopened and the call retried once: every
    SQL API function is safe to repeat (ingest is idempotent by event_id, the rest read).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        role: str | None = None,
        connect_timeout: int = 5,
        statement_timeout_ms: int = 20_000,
        application_name: str = "audit-trail",
    ) -> None:
        self._conninfo = conninfo
        self._role = _check_identifier(role) if role else None
        self._connect_kwargs: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "application_name": application_name,
            "options": f"-c statement_timeout={statement_timeout_ms}",
        }
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            # prepare_threshold=None: Supavisor's transaction mode cannot keep prepared statements.
            self._conn = psycopg.connect(
                self._conninfo, autocommit=True, prepare_threshold=None, **self._connect_kwargs
            )
            set_json_loads(orjson.loads, self._conn)
        return self._conn

    def call(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run `audit.<function>(...)`; map driver errors to the API's domain errors."""
        query, params = self._statement(function, args or {})
        return self._run(function, lambda conn: self._execute(conn, query, params))

    def as_user(self, user: DatabaseUser) -> Transport:
        """This connection, with each call run as `user` (see `as_user`)."""
        return _PostgresUserTransport(self, user)

    def call_as_user(self, user: DatabaseUser, function: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run `audit.<function>(...)` in a transaction under `SET LOCAL ROLE authenticated` and the user's
        claims, exactly as PostgREST runs a request carrying the user's JWT: RLS applies."""
        query, params = self._statement(function, args or {})
        claims = _orjson_dumps(user.claims)
        return self._run(
            function, lambda conn: self._execute(conn, query, params, role=AUTHENTICATED_ROLE, claims=claims)
        )

    def _run(self, function: str, operation: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        with self._lock:
            for attempt in (1, 2):
                try:
                    return operation(self._connection())
                except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected) as exc:
                    if attempt == 2:
                        raise ServiceUnavailable("the event store is busy; retry later") from exc
                except (pg_errors.OperationalError, pg_errors.InterfaceError) as exc:
                    if isinstance(exc, pg_errors.QueryCanceled):
                        raise ServiceUnavailable("the database did not answer in time") from exc
                    if attempt == 2 or not self._is_connection_lost():
                        logger.warning("database unavailable", extra={"function": function, "error": str(exc)})
                        raise ServiceUnavailable("the event store is unavailable; retry later") from exc
                    logger.info("database connection lost, reconnecting", extra={"function": function})
                    self.close()
                except pg_errors.Error as exc:
                    raise _domain_error(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _is_connection_lost(self) -> bool:
        return self._conn is None or self._conn.closed or self._conn.broken

    def _statement(self, function: str, args: Mapping[str, Any]) -> tuple[sql.Composed, dict[str, Any]]:
        named = sql.SQL(", ").join(
            sql.SQL("{} => {}").format(sql.Identifier(_check_identifier(name)), sql.Placeholder(name)) for name in args
        )
        query = sql.SQL("select {}.{}({})").format(
            sql.Identifier(SCHEMA), sql.Identifier(_check_identifier(function)), named
        )
        # Lists and objects travel as JSON text with no declared type (psycopg sends str as
        # "unknown"), so PostgreSQL types them from the function's signature: json or jsonb. The
        # SQL API takes every compound argument that way, as PostgREST passes them.
        params = {
            name: _orjson_dumps(value) if isinstance(value, dict | list) else value for name, value in args.items()
        }
        return query, params

    def _execute(
        self,
        conn: psycopg.Connection[Any],
        query: sql.Composed,
        params: dict[str, Any],
        *,
        role: str | None = None,
        claims: str | None = None,
    ) -> Any:
        """One statement; under `role` (default: the configured one) and JWT `claims`, in a short transaction."""
        role = role or self._role
        if role is None:
            row = conn.execute(query, params).fetchone()
        else:
            with conn.transaction():
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                if claims is not None:
                    conn.execute("select pg_catalog.set_config('request.jwt.claims', %s, true)", (claims,))
                row = conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Close the connection (the next call reconnects)."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class _PostgresUserTransport:
    """A `PostgresTransport` whose calls run as one signed-in user."""

    def __init__(self, transport: PostgresTransport, user: DatabaseUser) -> None:
        self._transport = transport
        self._user = user

    def call(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run the call as the user."""
        return self._transport.call_as_user(self._user, function, args)

    def close(self) -> None:
        """Nothing to release: the connection belongs to the underlying transport."""


def _domain_error(exc: pg_errors.Error) -> AuditError:
    """Database refusals that reach here are input the Python validation let through."""
    diag = exc.diag
    message = diag.message_primary or str(exc)
    if isinstance(exc, pg_errors.DataError | pg_errors.IntegrityError | pg_errors.InvalidParameterValue):
        return InvalidInput(f"the event store refused the input: {message}")
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return ConfigurationError(f"the database role lacks a grant: {message}")
    logger.exception("database error", extra={"sqlstate": exc.sqlstate})
    return ServiceUnavailable("the event store failed to answer; retry later")


class PostgrestTransport:
    """The same SQL API over Supabase's REST API (PostgREST `POST /rest/v1/rpc/<function>`).

    Uses postgrest-py, the client inside supabase-py, directly: `rpc` is all we need, and the
    full supabase client costs about 0.4 s of cold start for auth, storage and realtime.
    """

    def __init__(
        self,
        url: str,
        service_role_key: str,
        *,
        timeout: float = 20.0,
        bearer_token: str | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        import httpx
        from postgrest import SyncPostgrestClient  # imported here: only this transport needs it

        self._url = url
        self._service_role_key = service_role_key
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self._client = SyncPostgrestClient(
            base_url=f"{url.rstrip('/')}/rest/v1",
            schema=SCHEMA,
            # The apikey passes Supabase's gateway; the bearer token decides the database role.
            headers={"apikey": service_role_key, "Authorization": f"Bearer {bearer_token or service_role_key}"},
            http_client=self._http,
        )

    def as_user(self, user: DatabaseUser) -> Transport:
        """A transport that sends the user's own access token, so PostgREST runs the calls as them.

        PostgREST takes the role and the claims RLS sees from the verified token itself, so the
        claims the API derived are not used here: the database trusts only the token's signature.
        The HTTP connection pool is shared with this transport.
        """
        if not user.token:
            raise ConfigurationError("a call as a user over PostgREST needs the user's access token")
        return PostgrestTransport(self._url, self._service_role_key, bearer_token=user.token, http_client=self._http)

    def call(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        """POST the named arguments to `/rpc/<function>` with `Content-Profile: audit`."""
        from postgrest.exceptions import APIError

        try:
            response = self._client.rpc(_check_identifier(function), dict(args or {})).execute()
        except APIError as exc:
            if exc.code and exc.code.startswith(("22", "23")):
                raise InvalidInput(f"the event store refused the input: {exc.message}") from exc
            raise ServiceUnavailable(f"the event store failed to answer: {exc.message}") from exc
        except Exception as exc:  # network errors from httpx; the call is safe to retry
            raise ServiceUnavailable("the event store is unavailable; retry later") from exc
        return response.data

    def close(self) -> None:
        """Close the HTTP session (a user-scoped copy leaves the shared one open)."""
        if self._owns_http:
            self._http.close()


def transport_from_settings(settings: Settings) -> Transport:
    """Pick the transport the settings describe: Postgres URL first, then Supabase REST."""
    database_url = settings.database_url.get_secret_value() if settings.database_url else None
    if database_url is None and settings.database_secret_arn:
        database_url = read_secret(settings.database_secret_arn, settings.secret_max_age_seconds)
    if database_url:
        return PostgresTransport(
            database_url,
            role=settings.database_role,
            connect_timeout=settings.connect_timeout_seconds,
            statement_timeout_ms=settings.statement_timeout_ms,
        )
    key = settings.supabase_service_role_key.get_secret_value() if settings.supabase_service_role_key else None
    if key is None and settings.supabase_key_secret_arn:
        key = read_secret(settings.supabase_key_secret_arn, settings.secret_max_age_seconds)
    if settings.supabase_url and key:
        return PostgrestTransport(settings.supabase_url, key)
    raise ConfigurationError(
        "no event store configured: set DATABASE_URL (or AUDIT_DATABASE_SECRET_ARN), "
        "or SUPABASE_URL with SUPABASE_SERVICE_ROLE_KEY (or AUDIT_SUPABASE_KEY_SECRET_ARN)"
    )


@functools.cache
def _secrets_provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from audit_common.aws_config import aws_config

    return SecretsProvider(boto_config=aws_config())


def read_secret(arn: str, max_age: int) -> str:
    """A Secrets Manager string, cached by Powertools for `max_age` seconds; empty is a configuration error."""
    value = _secrets_provider().get(arn, max_age=max_age)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"secret {arn} is empty or not a string")
    return value


_transport: Transport | None = None
_transport_lock = threading.Lock()


def get_transport() -> Transport:
    """The process-wide transport, created on first use and kept for warm invocations."""
    global _transport  # noqa: PLW0603 - one connection per Lambda execution environment, by design
    with _transport_lock:
        if _transport is None:
            _transport = transport_from_settings(get_settings())
        return _transport


def reset_transport() -> None:
    """Forget the process-wide transport and secrets client (tests, or after settings change)."""
    global _transport  # noqa: PLW0603
    _secrets_provider.cache_clear()  # its boto3 client is bound to the endpoint of its first use
    with _transport_lock:
        if _transport is not None:
            _transport.close()
        _transport = None
