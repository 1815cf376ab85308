"""pgBackRest on a database host: backups, listing, repository checks and restore verification.

Commands run as the cluster's OS user through a Runner (SSH from the inventory in production,
local in tests). `verify_latest` is `backup.verify` for physical backups: it checks the
repository (`pgbackrest verify`: every file's checksum, WAL continuity), then really restores the
latest backup into a scratch data directory, recovers it to a restore point created for the
occasion, starts it on a private socket, and compares per-table row counts and sampled-range
checksums with the source's snapshot taken at that restore point.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lighthouse_ops.backup import fingerprint as fp
from lighthouse_ops.backup.plan import Plan, step
from lighthouse_ops.backup.remote import RemoteError, Runner, as_user, run_fingerprint_script


class PgBackRestError(RuntimeError):
    pass


@dataclass(frozen=True)
class BackupSet:
    label: str
    type: str
    start: datetime
    stop: datetime
    size: int
    repo_size: int
    wal_start: str | None
    wal_stop: str | None
    error: bool = False

    @property
    def seconds(self) -> int:
        return int((self.stop - self.start).total_seconds())


@dataclass
class WalRange:
    """The archived WAL of one database history (pgBackRest's archive id, e.g. 17-1)."""
    archive_id: str
    first: str
    last: str

    @property
    def segments(self) -> int | None:
        """Segments from first to last (16 MB segments; None across timelines)."""
        if self.first[:8] != self.last[:8]:
            return None
        return _segment_no(self.last) - _segment_no(self.first) + 1


def _segment_no(name: str) -> int:
    # TTTTTTTTLLLLLLLLSSSSSSSS: 256 segments of 16 MB per log file
    return int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


@dataclass
class Info:
    status: dict
    sets: list[BackupSet]
    wal: list[WalRange]


def parse_info(text: str, stanza: str) -> Info:
    """Status, backup sets (oldest first) and archived WAL from `pgbackrest --output=json info`."""
    data = json.loads(text)
    entry = next((s for s in data if s.get("name") == stanza), None)
    if entry is None:
        raise PgBackRestError(f"stanza {stanza!r} not in pgbackrest info output")
    sets = []
    for b in entry.get("backup", []):
        info = b.get("info", {})
        archive = b.get("archive", {})
        sets.append(BackupSet(
            label=b["label"], type=b["type"],
            start=datetime.fromtimestamp(b["timestamp"]["start"], UTC),
            stop=datetime.fromtimestamp(b["timestamp"]["stop"], UTC),
            size=int(info.get("size", 0)),
            repo_size=int(info.get("repository", {}).get("delta", 0)),
            wal_start=archive.get("start"), wal_stop=archive.get("stop"),
            error=bool(b.get("error", False))))
    wal = [WalRange(a.get("id", "?"), a["min"], a["max"]) for a in entry.get("archive", [])
           if a.get("min") and a.get("max")]
    return Info(entry.get("status", {}), sets, wal)


def render_wal(wal: list[WalRange]) -> str:
    if not wal:
        return "WAL archive: empty (nothing archived yet)"
    lines = []
    for r in wal:
        count = f" ({r.segments} segments)" if r.segments is not None else ""
        lines.append(f"WAL archive {r.archive_id}: {r.first} .. {r.last}{count}")
    return "\n".join(lines)


COMPRESS_EXT = ("zst", "lz4", "gz", "bz2")


def parse_manifest_files(text: str) -> dict[str, dict]:
    """The [target:file] section of a backup.manifest: name -> its JSON attributes."""
    files: dict[str, dict] = {}
    section = None
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip()
            continue
        if section == "[target:file]" and "=" in line:
            name, _, value = line.partition("=")
            files[name] = json.loads(value)
    return files


def render_sets(sets: list[BackupSet]) -> str:
    lines = [f"{'label':36} {'type':5} {'stopped (UTC)':20} {'secs':>5} {'db size':>10} "
             f"{'stored':>10}"]
    for b in sets:
        lines.append(f"{b.label:36} {b.type:5} {b.stop:%Y-%m-%d %H:%M:%S} {b.seconds:>5} "
                     f"{_size(b.size):>10} {_size(b.repo_size):>10}" + ("  ERROR" if b.error
                                                                          else ""))
    return "\n".join(lines)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)


@dataclass
class PgBackRest:
    runner: Runner
    stanza: str = "lighthouse"
    pg_user: str = "postgres"
    config: str | None = None  # --config (tests); hosts use /etc/pgbackrest/pgbackrest.conf
    extra: list[str] = field(default_factory=list)

    def argv(self, command: str, *options: str, args: tuple[str, ...] = ()) -> list[str]:
        cfg = [f"--config={self.config}"] if self.config else []
        return ["pgbackrest", *cfg, f"--stanza={self.stanza}", *self.extra, *options, command,
                *args]

    def run(self, command: str, *options: str, args: tuple[str, ...] = (), check: bool = True,
            timeout: float = 6 * 3600):
        try:
            return self.runner.run(as_user(self.pg_user, self.argv(command, *options, args=args)),
                                   check=check, timeout=timeout)
        except RemoteError as exc:
            raise PgBackRestError(str(exc)) from exc

    def info(self) -> Info:
        return parse_info(self.run("info", "--output=json").stdout, self.stanza)

    def sets(self) -> list[BackupSet]:
        info = self.info()
        status, sets = info.status, info.sets
        # 0 ok, 2 "no valid backups" (stanza exists, empty); anything else is a problem.
        if status.get("code") not in (0, 2, None) and not sets:
            raise PgBackRestError(f"stanza {self.stanza}: {status.get('message')}")
        return sets

    def backup(self, kind: str = "incr", lock_wait_s: float = 900) -> BackupSet:
        if kind not in ("full", "diff", "incr"):
            raise ValueError(f"backup type must be full, diff or incr, not {kind!r}")
        before = {b.label for b in self.sets()}
        deadline = time.monotonic() + lock_wait_s
        while True:
            try:
                self.run("backup", f"--type={kind}", "--log-level-console=warn")
                break
            except PgBackRestError as exc:
                # A scheduled backup (systemd timer) holds the stanza lock: wait for it, bounded.
                if "[050]" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(5)
        new = [b for b in self.sets() if b.label not in before]
        if not new:
            raise PgBackRestError("pgbackrest backup finished but no new backup set is listed")
        return new[-1]

    def check(self) -> None:
        self.run("check", "--log-level-console=warn", timeout=600)

    def check_structure(self, label: str) -> list[str]:
        """Fast, size-level check of one backup against its manifest: every bundle/file the
        manifest points into (including those of referenced earlier backups) must exist and be
        long enough. Catches truncated or missing objects in seconds, where `pgbackrest verify`
        retries each unreadable range until its I/O timeout (minutes per file)."""
        base = f"backup/{self.stanza}"
        manifest = self.run("repo-get", args=(f"{base}/{label}/backup.manifest",)).stdout
        files = parse_manifest_files(manifest)
        listings: dict[str, dict[str, int]] = {}

        def listing(backup: str) -> dict[str, int]:
            if backup not in listings:
                out = self.run("repo-ls", "--recurse", "--output=json",
                               args=(f"{base}/{backup}",)).stdout
                listings[backup] = {k: int(v.get("size", 0)) for k, v in json.loads(out).items()
                                    if v.get("type") == "file"}
            return listings[backup]

        problems: list[str] = []
        need: dict[tuple[str, int], int] = {}
        for name, f in files.items():
            if not f.get("size") and "bni" not in f:
                continue  # empty files are not stored
            backup = f.get("reference", label)
            repo_size = int(f.get("repo-size", f.get("size", 0)))
            if "bni" in f:
                key = (backup, int(f["bni"]))
                need[key] = max(need.get(key, 0), int(f.get("bno", 0)) + repo_size)
                continue
            objs = listing(backup)
            found = next((objs[n] for n in (name, *(f"{name}.{e}" for e in COMPRESS_EXT))
                          if n in objs), None)
            if found is None:
                problems.append(f"{backup}/{name}: missing from the repository")
            elif found != repo_size:
                problems.append(f"{backup}/{name}: {found} bytes stored, manifest says "
                                f"{repo_size}")
        for (backup, bni), size in sorted(need.items()):
            actual = listing(backup).get(f"bundle/{bni}")
            if actual is None:
                problems.append(f"{backup}/bundle/{bni}: missing from the repository")
            elif actual < size:
                problems.append(f"{backup}/bundle/{bni}: {actual} bytes stored, manifest needs "
                                f"at least {size} (truncated)")
        return problems

    def verify_repository(self, timeout: float = 3600) -> list[str]:
        """`pgbackrest verify`: checksums of backup files and WAL; returns the problems found."""
        try:
            proc = self.run("verify", "--log-level-console=info", check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return [f"pgbackrest verify did not finish within {timeout:.0f}s (unreadable "
                    "objects are retried until the I/O timeout); see /var/log/pgbackrest"]
        text = proc.stdout + proc.stderr
        problems = [line.strip() for line in text.splitlines()
                    if any(w in line for w in ("ERROR", "invalid", "missing", "corrupt"))
                    and "0 invalid" not in line]
        if proc.returncode != 0 and not problems:
            problems = [f"pgbackrest verify exited {proc.returncode}: {text.strip()[-500:]}"]
        return problems


@dataclass
class VerifyOutcome:
    backup: str
    scratch_dir: str
    tables: int
    rows: int
    differences: list[str]
    seconds: float
    applied: bool = True

    @property
    def ok(self) -> bool:
        return self.applied and not self.differences


@dataclass
class ClusterPaths:
    """Where the host's PostgreSQL binaries and scratch space are."""

    pg_bin: str = "/usr/lib/postgresql/17/bin"
    scratch_root: str = "/var/lib/postgresql/lighthouse-verify"
    source_conninfo: str = "host=/var/run/postgresql port=5432 dbname=lighthouse"
    scratch_port: int = 5499
    # OS user running the fingerprint script (peer authentication on the host's socket).
    script_user: str = "postgres"


def verify_latest(pgbr: PgBackRest, paths: ClusterPaths, *, yes: bool = False,
                  dry_run: bool = False, keep: bool = False, sample_rows: int = 200,
                  ask=None, interactive: bool | None = None,
                  verify_timeout: float = 3600) -> VerifyOutcome:
    t0 = time.monotonic()
    sets = pgbr.sets()
    if not sets:
        raise PgBackRestError(f"stanza {pgbr.stanza} has no backup to verify; run backup.now")
    latest = sets[-1]
    tag = f"{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    scratch = f"{paths.scratch_root}/{tag}"
    rp = f"lighthouse-verify-{tag}"
    plan = Plan(f"verify pgBackRest backup {latest.label} on {pgbr.runner.name}")
    plan.add("check the backup's objects against its manifest (sizes), then pgbackrest verify "
             "(checksum of every file, WAL continuity)")
    plan.add(f"create restore point {rp} on the source and fingerprint its tables")
    plan.add(f"restore {latest.label} into scratch {scratch} (type=name target={rp})")
    plan.add(f"start it on a private socket, port {paths.scratch_port}; compare fingerprints")
    plan.add("keep the scratch cluster" if keep else f"stop it and DELETE {scratch}")
    if not plan.approve(yes=yes, dry_run=dry_run, ask=ask, interactive=interactive):
        return VerifyOutcome(latest.label, scratch, 0, 0, [], 0.0, applied=False)

    run = pgbr.runner.run
    pg = pgbr.pg_user
    differences: list[str] = []
    # Every set: `pgbackrest verify` (2.45 has no --set) reads the whole repository and would
    # stall for minutes on any truncated object, so sizes are checked first, quickly.
    with step("check-structure", sets=len(sets)) as info:
        problems = [p for b in sets for p in pgbr.check_structure(b.label)]
        info["problems"] = len(problems)
    if not problems:
        with step("pgbackrest-verify", backup=latest.label) as info:
            problems = pgbr.verify_repository(timeout=verify_timeout)
            info["problems"] = len(problems)
    if problems:
        return VerifyOutcome(latest.label, scratch, 0, 0,
                             [f"repository: {p}" for p in problems], time.monotonic() - t0)
    with step("restore-point", name=rp) as info:
        src = run_fingerprint_script(pgbr.runner, {
            "action": "restore-point", "conninfo": paths.source_conninfo, "name": rp,
            "sample_rows": sample_rows}, user=paths.script_user)
        info["archived"] = src["archived"]
    if not src["archived"]:
        raise PgBackRestError(f"WAL {src['wal']} holding restore point {rp} was not archived in "
                              "time; check archiving (db.diagnose, pgbackrest check)")
    source = fp.from_json(src["tables"])
    sock = f"{scratch}/sock"
    pg_ctl = f"{paths.pg_bin}/pg_ctl"
    try:
        with step("restore", backup=latest.label, target=scratch):
            run(f"install -d -o {pg} -g {pg} -m 0700 {shlex.quote(paths.scratch_root)} "
                f"{shlex.quote(scratch)}")
            pgbr.run("restore", f"--set={latest.label}", f"--pg1-path={scratch}/data",
                     "--type=name", f"--target={rp}", "--target-action=promote",
                     "--archive-mode=off", "--log-level-console=warn")
        with step("start-scratch", port=paths.scratch_port):
            _start_scratch(run, pg, pg_ctl, scratch, sock, paths.scratch_port,
                           src.get("preload", ""))
        with step("compare") as info:
            dbname = _conninfo_dbname(paths.source_conninfo)
            restored = fp.from_json(run_fingerprint_script(pgbr.runner, {
                "action": "fingerprint", "conninfo":
                f"host={sock} port={paths.scratch_port} dbname={dbname} user={pg}",
                "sample_rows": sample_rows}, user=paths.script_user)["tables"])
            differences = fp.compare(source, restored)
            info["differences"] = len(differences)
    except (RemoteError, PgBackRestError) as exc:
        differences.append(f"restore of {latest.label} failed: {str(exc)[-1500:]}")
    finally:
        run(as_user(pg, [pg_ctl, "-D", f"{scratch}/data", "-m", "immediate", "stop"]),
            check=False)
        if not keep:
            run(f"rm -rf -- {shlex.quote(scratch)}", check=False)
    return VerifyOutcome(latest.label, scratch, len(source),
                         sum(t.rows for t in source.values()), differences,
                         time.monotonic() - t0)


def _conninfo_dbname(conninfo: str) -> str:
    for part in shlex.split(conninfo):
        key, _, value = part.partition("=")
        if key == "dbname":
            return value
    return "postgres"


def _start_scratch(run, pg: str, pg_ctl: str, scratch: str, sock: str, port: int,
                   preload: str, timeout: int = 900) -> None:
    """Starts the restored cluster privately: own socket dir, no TCP, no archiving, trust only
    on that 0700 socket directory; waits until recovery has promoted it."""
    data = f"{scratch}/data"
    hba, ident = f"{scratch}/pg_hba.conf", f"{scratch}/pg_ident.conf"
    run(f"install -d -o {pg} -g {pg} -m 0700 {shlex.quote(sock)} && "
        f"printf 'local all all trust\\n' > {shlex.quote(hba)} && : > {shlex.quote(ident)} && "
        f"touch {shlex.quote(data)}/postgresql.conf && chown {pg}: {shlex.quote(hba)} "
        f"{shlex.quote(ident)} {shlex.quote(data)}/postgresql.conf")
    opts = (f"-p {port} -k {sock} -c listen_addresses='' -c archive_mode=off "
            f"-c hba_file={hba} -c ident_file={ident} "
            f"-c shared_buffers=64MB -c shared_preload_libraries='{preload}' "
            f"-c hot_standby=off -c cluster_name=lighthouse-verify")
    started = run(as_user(pg, [pg_ctl, "-D", data, "-l", f"{scratch}/postgres.log", "-w", "-t",
                               str(timeout), "-o", opts, "start"]), timeout=timeout + 30,
                  check=False)
    if started.returncode != 0:
        log = run(f"tail -n 30 {shlex.quote(scratch)}/postgres.log", check=False).stdout
        raise PgBackRestError(f"scratch cluster did not start:\n{log}")
    psql = pg_ctl.replace("pg_ctl", "psql")
    deadline = time.monotonic() + timeout
    while True:
        out = run(as_user(pg, [psql, "-X", "-At", "-h", sock, "-p", str(port), "-d",
                               "postgres", "-c", "SELECT pg_is_in_recovery()"]), check=False)
        if out.returncode == 0 and out.stdout.strip() == "f":
            return
        if time.monotonic() > deadline:
            log = run(f"tail -n 30 {shlex.quote(scratch)}/postgres.log", check=False).stdout
            raise PgBackRestError(f"scratch cluster still recovering after {timeout}s:\n{log}")
        time.sleep(0.5)
