"""Finding and composing the numbered SQL migrations.

Layout (documented in docs/schema.md): `sql/NNN_name.sql` is a migration's base part, applied on
every capability level; `sql/NNN_name.<tag>.sql` is an optional variant part appended after it,
where <tag> is `vanilla`, `hypertable` (both TimescaleDB editions), `apache` or `timescale`.
A level applies base + its tags in Capability.sql_tags order, in one transaction; the composed
text is what gets checksummed and what `--dry-run` prints.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lighthouse.db.capability import Capability
from lighthouse.db.errors import MigrationError

FILE_RE = re.compile(r"^(?P<version>\d{3})_(?P<name>[a-z0-9_]+)"
                     r"(?:\.(?P<tag>vanilla|hypertable|apache|timescale))?\.sql$")
ENV_SQL_DIR = "LIGHTHOUSE_SQL_DIR"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    capability: Capability
    files: tuple[str, ...]  # file names composed, in order
    sql: str  # composed text, exactly what is executed

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:03d}_{self.name}"


def sql_dir() -> Path:
    """Where the migrations live: $LIGHTHOUSE_SQL_DIR, the wheel's lighthouse/sql, or repo sql/."""
    override = os.environ.get(ENV_SQL_DIR)
    if override:
        return Path(override)
    packaged = Path(str(resources.files("lighthouse"))) / "sql"
    if packaged.is_dir():
        return packaged
    repo = Path(__file__).resolve().parents[3] / "sql"  # app/lighthouse/db/ -> repo root
    if repo.is_dir():
        return repo
    raise MigrationError(f"no migrations found: neither {packaged} nor {repo} exists "
                         f"(set {ENV_SQL_DIR})")


def _scan(directory: Path) -> dict[int, dict[str | None, Path]]:
    found: dict[int, dict[str | None, Path]] = {}
    names: dict[int, str] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        m = FILE_RE.match(path.name)
        if not m:
            raise MigrationError(f"{path}: migration file names must look like "
                                 "NNN_name.sql or NNN_name.<vanilla|hypertable|apache|"
                                 "timescale>.sql")
        version = int(m["version"])
        if names.setdefault(version, m["name"]) != m["name"]:
            raise MigrationError(f"{path}: version {version:03d} is already named "
                                 f"{names[version]!r}")
        found.setdefault(version, {})[m["tag"]] = path
    versions = sorted(found)
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"{directory}: migration versions must be 1..N without gaps, "
                             f"found {versions}")
    return found


def load_migrations(capability: Capability, directory: Path | None = None) -> list[Migration]:
    """Every migration composed for `capability`, in version order."""
    directory = directory or sql_dir()
    out = []
    for version, parts in sorted(_scan(directory).items()):
        chosen = [parts[t] for t in (None, *capability.sql_tags) if t in parts]
        named = FILE_RE.match(next(iter(parts.values())).name)
        assert named is not None  # _scan keeps only files FILE_RE matches
        name = named["name"]
        sql = "".join(f"-- ==== {p.name} ====\n{p.read_text()}\n" for p in chosen)
        out.append(Migration(version, name, capability, tuple(p.name for p in chosen), sql))
    return out
