"""SQLite's numbered migrations, each applied in one transaction and recorded in PRAGMA user_version.

1 and 2 are the schema of the first releases (useapi only), kept verbatim so every database climbs the same
steps. 3 is the backend seam: jobs name their backend and its job id, buttons are records (name and the
backend's reference), results are media records, failures are error kinds, the key/value `meta` table
becomes typed state, and the database gets the identity its buttons and references carry. 4 is Midjourney's
whole toolset: a job names the command that made it (imagine, describe, blend) with a blend's dimensions, a
describe's prompts and a grid's seed; the images members give are kept (`job_images`), the region editor's
one-use links live in `editor_links`, and a server has a speed. 5 is several processes on one database (as
PostgreSQL has it; one SQLite process holds them all): each job's claim and lease and its publish claim, the
relay-wide state every process reads (reduced concurrency, the outage backoff), admin alerts sent once per
episode, and the interaction tokens kept for private notices.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import aiosqlite

from bot.jobs import FRUITLESS_STATES, ErrorKind
from bot.store.claims import MAY_NEED_OWNER

Migration = str | Callable[[aiosqlite.Connection], Awaitable[None]]

LEGACY_1: Final = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        owner_id INTEGER NOT NULL,
        parent_id INTEGER REFERENCES jobs(id),
        button TEXT,
        prompt TEXT NOT NULL,
        button_prompt TEXT,
        useapi_jobid TEXT UNIQUE,
        status TEXT NOT NULL,
        progress INTEGER,
        buttons TEXT NOT NULL DEFAULT '[]',
        job_json TEXT,
        message_id INTEGER,
        extra_message_ids TEXT NOT NULL DEFAULT '[]',
        image_url TEXT,
        published INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        error_code INTEGER,
        duplicate_of INTEGER REFERENCES jobs(id),
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        simulated INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        submitted_at REAL,
        last_event_at REAL,
        finished_at REAL
    );
    CREATE INDEX jobs_status ON jobs(status);
    CREATE INDEX jobs_owner ON jobs(guild_id, owner_id, id DESC);
    CREATE INDEX jobs_parent ON jobs(parent_id);
    CREATE INDEX jobs_unpublished ON jobs(published) WHERE published = 0;
"""

LEGACY_2: Final = """
    CREATE TABLE guild_settings (
        guild_id INTEGER PRIMARY KEY,
        policy TEXT NOT NULL DEFAULT 'owner',
        policy_role_id INTEGER,
        gallery_channel_id INTEGER,
        admin_channel_id INTEGER,
        daily_quota INTEGER,
        queue_limit INTEGER
    );
    CREATE TABLE member_limits (
        guild_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        daily_quota INTEGER,
        queue_limit INTEGER,
        PRIMARY KEY (guild_id, user_id)
    );
    CREATE TABLE user_settings (
        user_id INTEGER PRIMARY KEY,
        remix INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_owner_created ON jobs(guild_id, owner_id, created_at);
"""

JOBS_V3: Final = """
    CREATE TABLE jobs_v3 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ref TEXT,
        guild_id INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        owner_id INTEGER NOT NULL,
        parent_id INTEGER REFERENCES jobs(id),
        button TEXT,
        button_ref TEXT,
        one_shot INTEGER NOT NULL DEFAULT 0,
        prompt TEXT NOT NULL,
        button_prompt TEXT,
        backend TEXT NOT NULL,
        backend_job_id TEXT,
        status TEXT NOT NULL,
        progress INTEGER,
        buttons TEXT NOT NULL DEFAULT '[]',
        media TEXT NOT NULL DEFAULT '[]',
        preview_url TEXT,
        done_buttons TEXT NOT NULL DEFAULT '[]',
        job_json TEXT,
        message_id INTEGER,
        extra_message_ids TEXT NOT NULL DEFAULT '[]',
        image_url TEXT,
        gallery_message_id INTEGER,
        published INTEGER NOT NULL DEFAULT 0,
        publish_failures INTEGER NOT NULL DEFAULT 0,
        undelivered TEXT,
        error TEXT,
        error_kind TEXT,
        duplicate_of INTEGER REFERENCES jobs(id),
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        simulated INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        submitted_at REAL,
        last_event_at REAL,
        finished_at REAL,
        UNIQUE (backend, backend_job_id)
    )
"""

JOBS_V3_INDEXES: Final = (
    "CREATE INDEX jobs_status ON jobs(status)",
    "CREATE INDEX jobs_owner ON jobs(guild_id, owner_id, id DESC)",
    "CREATE INDEX jobs_parent ON jobs(parent_id)",
    "CREATE INDEX jobs_unpublished ON jobs(published) WHERE published = 0",
    "CREATE INDEX jobs_owner_created ON jobs(guild_id, owner_id, created_at)",
    "CREATE INDEX jobs_message ON jobs(message_id)",  # a reaction names only the message
    # A one-shot button (U1..U4) makes at most one job per parent that is waiting, running or done: a second
    # click, from any process, fails here instead of spending Midjourney time. One that came to nothing
    # (failed, moderated, cancelled, duplicate) leaves the index, so the button may be pressed again.
    "CREATE UNIQUE INDEX jobs_one_shot ON jobs(parent_id, button) WHERE one_shot = 1 "
    f"AND status NOT IN ({', '.join(repr(state) for state in sorted(FRUITLESS_STATES))})",
)

STATE_V3: Final = (
    """CREATE TABLE relay_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        database_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        webhook_secret TEXT,
        paused_reason TEXT,
        paused_account TEXT,
        account_remix TEXT
    )""",
    "CREATE TABLE command_hashes (scope TEXT PRIMARY KEY, digest TEXT NOT NULL)",
)

# Before 3 a failure was an HTTP status of useapi's, or one of the relay's own numbers.
LEGACY_KINDS: Final = {
    400: ErrorKind.BAD_REQUEST, 1400: ErrorKind.BAD_REQUEST, 401: ErrorKind.UNAUTHORISED,
    402: ErrorKind.NO_SUBSCRIPTION, 404: ErrorKind.NOT_FOUND, 409: ErrorKind.ALREADY_DONE,
    422: ErrorKind.MODERATED, 429: ErrorKind.BUSY, 504: ErrorKind.UNTRACKABLE, 596: ErrorKind.NEEDS_HUMAN,
    1408: ErrorKind.TIMED_OUT, 1503: ErrorKind.UNAVAILABLE, 1415: ErrorKind.UNAVAILABLE,
}
LEGACY_ONE_SHOT: Final = frozenset({"U1", "U2", "U3", "U4"})
NEW_COLUMNS: Final = (
    "id", "ref", "guild_id", "channel_id", "owner_id", "parent_id", "button", "button_ref", "one_shot", "prompt",
    "button_prompt", "backend", "backend_job_id", "status", "progress", "buttons", "media", "preview_url",
    "done_buttons", "job_json", "message_id", "extra_message_ids", "image_url", "gallery_message_id", "published",
    "error", "error_kind", "duplicate_of", "attempts", "not_before", "simulated", "created_at", "updated_at",
    "submitted_at", "last_event_at", "finished_at",
)


def new_identity() -> str:
    """A database's identity: ten hex digits, made once when the database is created (or first migrated)."""
    return secrets.token_hex(5)


def legacy_kind(status: str, code: int | None) -> str | None:
    if status == "moderated":
        return ErrorKind.MODERATED.value
    if status == "cancelled":
        return ErrorKind.CANCELLED.value
    if code is None:
        return None
    kind = LEGACY_KINDS.get(code)
    if kind is None:
        kind = ErrorKind.UNAVAILABLE if 500 <= code < 600 else ErrorKind.JOB_FAILED
    return kind.value


def legacy_media(body: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The files of a useapi v2 job body (every job before 3 was one): its attachments, else its embed image."""
    if not body:
        return []
    found = [{key: a[key] for key in ("url", "content_type", "size", "width", "height", "filename")
              if a.get(key) is not None}
             for a in body.get("attachments") or [] if isinstance(a, dict) and isinstance(a.get("url"), str)]
    if found:
        return found
    for embed in (body.get("embeds") or [])[:1]:
        image = embed.get("image") if isinstance(embed, dict) else None
        if isinstance(image, dict) and isinstance(image.get("url"), str):
            return [{"url": image["url"]}]
    return []


async def seam_v3(db: aiosqlite.Connection) -> None:
    """Migration 3, in Python: the old rows are rewritten field by field into the new shape."""
    await db.execute(JOBS_V3)
    meta: dict[str, str] = {}
    async with db.execute("SELECT key, value FROM meta") as cur:
        for key, value in await cur.fetchall():
            meta[str(key)] = str(value)
    taken: set[tuple[int, str]] = set()
    marks = ", ".join("?" * len(NEW_COLUMNS))
    insert = f"INSERT INTO jobs_v3 ({', '.join(NEW_COLUMNS)}) VALUES ({marks})"  # noqa: S608 - our columns
    async with db.execute("SELECT * FROM jobs ORDER BY id") as cur:
        rows = await cur.fetchall()
    for row in rows:
        old = dict(row)  # the connection's rows are aiosqlite.Row
        body = json.loads(old["job_json"]) if old["job_json"] else None
        buttons = [{"name": name, "ref": name} for name in json.loads(old["buttons"] or "[]")]
        done = [c["button"] for c in (body or {}).get("children") or []
                if isinstance(c, dict) and c.get("button") in LEGACY_ONE_SHOT]
        # The first live U1 of a parent holds the one-shot place; an older duplicate of it does not.
        key = (old["parent_id"], old["button"])
        one_shot = (old["parent_id"] is not None and old["button"] in LEGACY_ONE_SHOT
                    and old["status"] not in FRUITLESS_STATES and key not in taken)
        if one_shot:
            taken.add(key)
        gallery = meta.get(f"gallery:{old['id']}")
        values = {
            **{name: old.get(name) for name in NEW_COLUMNS if name in old},
            "ref": str(old["id"]),  # what replyRef and the callback path carried before identities
            "button_ref": old["button"],
            "one_shot": int(one_shot),
            "backend": "useapi",
            "backend_job_id": old["useapi_jobid"],
            "buttons": json.dumps(buttons, ensure_ascii=False),
            "media": json.dumps(legacy_media(body) if old["status"] == "completed" else [], ensure_ascii=False),
            "done_buttons": json.dumps(done, ensure_ascii=False),
            "gallery_message_id": int(gallery) if gallery and gallery.isdigit() else None,
            "error_kind": legacy_kind(old["status"], old["error_code"]),
        }
        await db.execute(insert, [values.get(name) for name in NEW_COLUMNS])
    await db.execute("DROP TABLE jobs")
    await db.execute("ALTER TABLE jobs_v3 RENAME TO jobs")
    for statement in JOBS_V3_INDEXES:
        await db.execute(statement)
    for statement in STATE_V3:
        await db.execute(statement)
    remix = meta.get("account_remix")
    await db.execute(
        "INSERT INTO relay_state (id, database_id, created_at, webhook_secret, paused_reason, paused_account, "
        "account_remix) VALUES (1, ?, ?, ?, ?, ?, ?)",
        (new_identity(), time.time(), meta.get("webhook_secret"), meta.get("paused_reason") or None,
         meta.get("paused_channel") or None, remix if remix in {"on", "off", "unknown"} else None),
    )
    for key, value in meta.items():
        if key.startswith("command_hash:"):
            await db.execute("INSERT INTO command_hashes (scope, digest) VALUES (?, ?)",
                             (key.removeprefix("command_hash:"), value))
    await db.execute("DROP TABLE meta")


TOOLSET_4: Final = """
    ALTER TABLE jobs ADD COLUMN action TEXT NOT NULL DEFAULT 'imagine';
    ALTER TABLE jobs ADD COLUMN dimensions TEXT;
    ALTER TABLE jobs ADD COLUMN prompts TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN seed TEXT;
    ALTER TABLE guild_settings ADD COLUMN speed TEXT;
    CREATE TABLE job_images (
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        position INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        data BLOB NOT NULL,
        token TEXT NOT NULL UNIQUE,
        kept_at REAL NOT NULL,
        PRIMARY KEY (job_id, position)
    );
    CREATE TABLE editor_links (
        token TEXT PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        member_id INTEGER NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL
    );
    CREATE INDEX editor_links_expiry ON editor_links(expires_at);
"""

# The lease is 0 (free to take) on a new job until its process holds it; NULL once nobody needs to follow it.
PROCESSES_5: Final = f"""
    ALTER TABLE jobs ADD COLUMN claimed_by INTEGER;
    ALTER TABLE jobs ADD COLUMN lease_until REAL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN publish_by INTEGER;
    ALTER TABLE jobs ADD COLUMN publish_until REAL;
    UPDATE jobs SET lease_until = NULL WHERE NOT {MAY_NEED_OWNER};
    CREATE INDEX jobs_lease ON jobs(lease_until) WHERE lease_until IS NOT NULL;
    CREATE INDEX jobs_owner_served ON jobs(owner_id, submitted_at);
    ALTER TABLE relay_state ADD COLUMN reduced_until REAL NOT NULL DEFAULT 0;
    ALTER TABLE relay_state ADD COLUMN outage_since REAL;
    ALTER TABLE relay_state ADD COLUMN outage_round INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE relay_state ADD COLUMN outage_retry_at REAL NOT NULL DEFAULT 0;
    CREATE TABLE alert_episodes (
        kind TEXT NOT NULL,
        guild_id INTEGER NOT NULL,
        sent_at REAL NOT NULL,
        PRIMARY KEY (kind, guild_id)
    );
    CREATE TABLE notices (
        job_id INTEGER PRIMARY KEY,
        token TEXT NOT NULL,
        admin INTEGER NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX notices_expiry ON notices(expires_at);
"""  # noqa: S608 - our constants

MIGRATIONS: Final[Sequence[Migration]] = (LEGACY_1, LEGACY_2, seam_v3, TOOLSET_4, PROCESSES_5)
# The version a database is at once this relay opened it (PostgreSQL's migrations are numbered alike).
SCHEMA_VERSION: Final = len(MIGRATIONS)
# Migrations that rebuild a table others point at: foreign keys are off while they run (SQLite's own recipe
# for changing a table's shape), and checked once they are done.
REBUILDS: Final = frozenset({3})


def split_sql(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
