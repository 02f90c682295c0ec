"""The last known good state of each tenant, kept where a process that starts during a database outage
finds it (ADR 0007).

Evaluation needs three things from the database: the tenant (is it active?), the API client of the
token (is it revoked?) and the ruleset. Each process keeps them in memory; this module also keeps,
per tenant, the last answer the database gave, in records of three kinds:

- `tenant`: id, name and whether it is active;
- `client-<client id>`: whether that API client is active (never its secret or its hash);
- `ruleset`: the engine's input documents (live flags and segments), with the ruleset version.

Where: in Redis when `REDIS_URL` is set (`<REDIS_KEY_PREFIX>:last-known:<database>:<tenant>:<kind>`,
a hash of `version`, `header` and `body`), otherwise in files
`<LAST_KNOWN_DIR>/<database>/<tenant>/<kind>.json` (mode 0600 in 0700 directories of the service
user, each replaced atomically). `<database>` is a short hash of the database's engine, host, port
and name, so two installations sharing a host or a Redis never read each other's records.

Readers use a record only while the database cannot be read, and only for the tenant their verified
token names (callers pass that slug; anything that is not a valid slug is refused here). Nothing in
this module raises: a store that cannot be read or written is logged, and the caller carries on as
if nothing were stored.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from kernel import redis
from tenancy.models import Tenant, tenant_slug_validator

logger = logging.getLogger("flagsvc.last_known")

FORMAT = 1
RULESET = "ruleset"
TENANT = "tenant"
_TENANT_SLUG = re.compile(tenant_slug_validator.regex)  # the model's rule: no path can be formed from it
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_KINDS = re.compile(r"^(tenant|ruleset|client-[A-Za-z0-9][A-Za-z0-9_-]{0,63})$")

# Replace a hash only if the version it holds is older, atomically: two processes that compiled
# different versions may write in either order, and the newer must stay.
_SAVE_IF_NEWER = """
local held = redis.call('HGET', KEYS[1], 'version')
if ARGV[4] == '0' and held and tonumber(held) >= tonumber(ARGV[1]) then return held end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'header', ARGV[2], 'body', ARGV[3])
return false
"""

# Claim the writing of a version: refused when that version or a newer one is kept, or claimed by
# another process within the claim's lifetime (`claim_version`).
_CLAIM = """
local held = redis.call('HGET', KEYS[1], 'version')
if held and held ~= '' and tonumber(held) >= tonumber(ARGV[1]) then return 0 end
local claimed = redis.call('GET', KEYS[2])
if claimed and tonumber(claimed) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
"""
CLAIM_SECONDS = 60


@dataclass(frozen=True)
class Record:
    tenant: str
    kind: str
    version: int | None
    saved_at: str
    data: dict[str, Any]


def client_kind(client_id: str) -> str | None:
    """The record kind of an API client, or None for an id that cannot name a record."""
    return f"client-{client_id}" if _CLIENT_ID.fullmatch(client_id) else None


def _valid(tenant: str, kind: str) -> bool:
    return bool(_TENANT_SLUG.fullmatch(tenant)) and bool(_KINDS.fullmatch(kind))


def _database_id() -> str:
    db = settings.DATABASES["default"]
    identity = "|".join(str(db.get(part) or "") for part in ("ENGINE", "HOST", "PORT", "NAME"))
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _header(tenant: str, kind: str, version: int | None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "tenant": tenant,
        "kind": kind,
        "version": version,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _record(tenant: str, kind: str, header_text: str, body_text: str) -> Record | None:
    try:
        header, data = json.loads(header_text), json.loads(body_text)
    except ValueError:
        logger.warning("a last known record is unreadable; ignored", extra={"tenant": tenant, "kind": kind})
        return None
    if (
        not isinstance(header, dict)
        or header.get("format") != FORMAT
        or header.get("tenant") != tenant
        or header.get("kind") != kind
        or not isinstance(data, dict)
    ):
        logger.warning(
            "a last known record names another tenant or format; ignored", extra={"tenant": tenant}
        )
        return None
    version = header.get("version")
    return Record(
        tenant, kind, version if isinstance(version, int) else None, str(header.get("saved_at")), data
    )


# --- Redis -------------------------------------------------------------------------------------------


def _redis_key(tenant: str, kind: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:last-known:{_database_id()}:{tenant}:{kind}"


def _redis_save(
    tenant: str, kind: str, header: str, body: str, version: int | None, replace: bool
) -> int | None:
    key = _redis_key(tenant, kind)
    if version is None:
        redis.connection().hset(key, mapping={"version": "", "header": header, "body": body})
        return None
    held = redis.connection().eval(_SAVE_IF_NEWER, 1, key, version, header, body, "1" if replace else "0")
    return None if held is None else int(held)


def _redis_load(tenant: str, kind: str) -> Record | None:
    header, body = redis.connection().hmget(_redis_key(tenant, kind), ["header", "body"])
    if header is None or body is None:
        return None
    return _record(tenant, kind, header.decode(), body.decode())


def _redis_version(tenant: str, kind: str) -> int | None:
    held = redis.connection().hget(_redis_key(tenant, kind), "version")
    return int(held) if held else None


# --- Files -------------------------------------------------------------------------------------------

_DIRECTORY_REFUSED: set[str] = set()


def _tenant_directory(tenant: str, *, create: bool) -> Path | None:
    """`<LAST_KNOWN_DIR>/<database>/<tenant>`, or None if it is missing or not the service user's alone."""
    root = Path(settings.LAST_KNOWN_DIR)
    if create:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        status = root.lstat()
    except FileNotFoundError:
        return None
    # In a shared temp dir, another user could have made the path first, or a link to elsewhere.
    if status.st_uid != os.geteuid() or not stat.S_ISDIR(status.st_mode):
        if str(root) not in _DIRECTORY_REFUSED:
            _DIRECTORY_REFUSED.add(str(root))
            logger.error(
                "LAST_KNOWN_DIR is not a directory of the service user (another user's, or a link); "
                "the last known state is not kept",
                extra={"path": str(root)},
            )
        return None
    if status.st_mode & 0o077:
        root.chmod(0o700)  # ours: make it private, as a directory we create is
    database = root / _database_id()
    directory = database / tenant
    if create:
        database.mkdir(mode=0o700, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
    return directory


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Across processes: one versioned write at a time per tenant directory."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _file_header(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as file:
            header = json.loads(file.readline())
    except (FileNotFoundError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def _write_atomically(directory: Path, name: str, content: str) -> None:
    """A reader sees the old file or the new one, whole: write a temporary file, then rename it.

    No fsync: it cost ~15 ms per write, in a request. The records must outlive a process, not the
    host; a record a power loss left empty is unreadable and ignored, as if none were kept.
    """
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(content)
        os.replace(temporary, directory / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _file_save(
    tenant: str, kind: str, header: str, body: str, version: int | None, replace: bool
) -> int | None:
    directory = _tenant_directory(tenant, create=True)
    if directory is None:
        raise PermissionError(f"{settings.LAST_KNOWN_DIR} is not the service user's")
    name = f"{kind}.json"
    if version is None:
        _write_atomically(directory, name, f"{header}\n{body}\n")
        return None
    with _locked(directory):
        held = (_file_header(directory / name) or {}).get("version")
        if not replace and isinstance(held, int) and held >= version:
            return held
        _write_atomically(directory, name, f"{header}\n{body}\n")
    return None


def _file_load(tenant: str, kind: str) -> Record | None:
    directory = _tenant_directory(tenant, create=False)
    if directory is None:
        return None
    try:
        with (directory / f"{kind}.json").open(encoding="utf-8") as file:
            header, body = file.readline(), file.readline()
    except FileNotFoundError:
        return None
    return _record(tenant, kind, header, body)


def _file_version(tenant: str, kind: str) -> int | None:
    directory = _tenant_directory(tenant, create=False)
    held = None if directory is None else (_file_header(directory / f"{kind}.json") or {}).get("version")
    return held if isinstance(held, int) else None


# --- The interface -----------------------------------------------------------------------------------


def save(
    tenant: str, kind: str, data: dict[str, Any], *, version: int | None = None, replace: bool = False
) -> int | None:
    """Keep `data` as the tenant's last known `kind`.

    With a `version`, only over an older version (or `replace=True`, when the database says the held
    one is wrong); returns the newer or equal version that was kept instead, else None.
    """
    try:
        return _save(tenant, kind, data, version, replace)
    except Exception:
        logger.warning(
            "could not keep the last known state", extra={"tenant": tenant, "kind": kind}, exc_info=True
        )
        return None


def dumps(data: Any) -> str:
    """A record's body as it is stored: compact JSON, ASCII only, no NaN. A caller may build a body
    from pieces made by this function (`save_text`): the same bytes as `save` would write."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def save_text(tenant: str, kind: str, body: str, *, version: int, replace: bool = False) -> int | None:
    """`save`, for a body already serialised (`dumps`, or pieces of it joined): a caller that keeps
    the serialised pieces of a large record writes a new version without serialising it whole."""
    try:
        return _save_text(tenant, kind, body, version, replace)
    except Exception:
        logger.warning(
            "could not keep the last known state", extra={"tenant": tenant, "kind": kind}, exc_info=True
        )
        return None


def _save(tenant: str, kind: str, data: dict[str, Any], version: int | None, replace: bool) -> int | None:
    """As `save`, but raises when the record could not be written."""
    return _save_text(tenant, kind, dumps(data), version, replace)


def _save_text(tenant: str, kind: str, body: str, version: int | None, replace: bool) -> int | None:
    if not _valid(tenant, kind):
        raise ValueError(f"no record can be named {kind!r} of {tenant!r}")
    header = json.dumps(_header(tenant, kind, version), separators=(",", ":"))
    if settings.REDIS_URL:
        return _redis_save(tenant, kind, header, body, version, replace)
    return _file_save(tenant, kind, header, body, version, replace)


def load(tenant: str, kind: str) -> Record | None:
    if not _valid(tenant, kind):
        return None
    try:
        return _redis_load(tenant, kind) if settings.REDIS_URL else _file_load(tenant, kind)
    except Exception:
        logger.warning(
            "could not read the last known state", extra={"tenant": tenant, "kind": kind}, exc_info=True
        )
        return None


def stored_version(tenant: str, kind: str) -> int | None:
    """The version of a versioned record, read without its body."""
    if not _valid(tenant, kind):
        return None
    try:
        return _redis_version(tenant, kind) if settings.REDIS_URL else _file_version(tenant, kind)
    except Exception:
        logger.warning(
            "could not read the last known state", extra={"tenant": tenant, "kind": kind}, exc_info=True
        )
        return None


def claim_version(tenant: str, kind: str, version: int) -> bool:
    """Whether this process should write `version` of a versioned record: False when that version or
    a newer one is kept, or another process claimed it (or a newer one) in the last `CLAIM_SECONDS`.

    Every process applies every change, and serialising a large record costs each of them tens of
    milliseconds; with the claim about one process in the installation pays. A claimant that dies
    before writing leaves the record one version behind until the next change, which is what an
    outage at that moment would have left too. In files (one machine, no Redis) there is no claim:
    only the kept version is compared.
    """
    if not _valid(tenant, kind):
        return False
    try:
        if not settings.REDIS_URL:
            held = _file_version(tenant, kind)
            return held is None or held < version
        key = _redis_key(tenant, kind)
        return bool(redis.connection().eval(_CLAIM, 2, key, f"{key}:claim", version, CLAIM_SECONDS))
    except Exception:
        logger.warning(
            "could not read the last known state", extra={"tenant": tenant, "kind": kind}, exc_info=True
        )
        return False


# --- Tenants and API clients, as the selectors see them ----------------------------------------------

# What this process last kept per record: the selectors read the database every few seconds, and
# only a change is written.
_kept: dict[tuple[str, str], dict[str, Any]] = {}
_kept_lock = threading.Lock()


def _keep_if_changed(tenant: str, kind: str, data: dict[str, Any]) -> None:
    if _kept.get((tenant, kind)) == data:
        return
    if not _valid(tenant, kind):
        return
    try:
        _save(tenant, kind, data, None, False)
    except Exception:  # not remembered as kept: the next read of the database tries again
        logger.warning(
            "could not keep the last known state", extra={"tenant": tenant, "kind": kind}, exc_info=True
        )
        return
    with _kept_lock:
        if len(_kept) > 10_000:
            _kept.clear()
        _kept[(tenant, kind)] = data


def remember_tenant(slug: str, tenant: Tenant | None) -> None:
    """What the database said of this slug: the tenant, or None (unknown or inactive)."""
    if tenant is None:
        _keep_if_changed(slug, TENANT, {"active": False})
    else:
        _keep_if_changed(slug, TENANT, {"active": tenant.is_active, "id": tenant.pk, "name": tenant.name})


def remember_client(slug: str, client_id: str, *, active: bool) -> None:
    kind = client_kind(client_id)
    if kind is not None:
        _keep_if_changed(slug, kind, {"active": active})


def last_known_tenant(slug: str) -> tuple[bool, Tenant | None]:
    """(known, tenant): the tenant as last seen active, or None if it was last seen unknown or inactive.

    The instance is not loaded from the database; it carries the id, slug and name evaluation uses.
    """
    record = load(slug, TENANT)
    if record is None:
        return False, None
    if record.data.get("active") is not True or not isinstance(record.data.get("id"), int):
        return True, None
    return True, Tenant(
        id=record.data["id"], slug=slug, name=str(record.data.get("name", "")), is_active=True
    )


def last_known_client_active(slug: str, client_id: str) -> bool | None:
    """Whether the API client was last seen active, or None if nothing is known of it."""
    kind = client_kind(client_id)
    record = None if kind is None else load(slug, kind)
    return None if record is None else record.data.get("active") is True


def forget_kept() -> None:
    with _kept_lock:
        _kept.clear()
