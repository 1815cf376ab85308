"""The prober service (`lighthouse run`): wires scheduler, checks, storage, alerting and web.

Start-up: optional migration (database.apply_migrations), then `ensure_schema` (refuses a newer
schema, waits for an older one), then the monitors are loaded and the scheduler starts.
SIGTERM/SIGINT: stop dispatching, give in-flight checks `scheduler.shutdown_grace_s` to finish
(the rest are recorded with error_code "shutdown"), give alert deliveries the same grace, flush
results to the database (or the spool if it is down), then exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool, ConnectionPool

from lighthouse.alerting.dispatch import AlertDispatcher
from lighthouse.alerting.state import AlertPolicy, Change, Health
from lighthouse.checks import CheckContext, run_check
from lighthouse.config import FLEET_NAME_RE, Config, ConfigError, StartupError
from lighthouse.fleet.membership import Membership
from lighthouse.fleet.ownership import Members
from lighthouse.fleet.verdict import Decision, Verdicts, alert_for, first_bad_result
from lighthouse.incidents import IncidentLog
from lighthouse.logs import event
from lighthouse.maintenance_windows import MaintenanceSchedule
from lighthouse.metrics import Metrics
from lighthouse.models import CheckResult, Monitor
from lighthouse.monitor_cache import FILENAME as CACHE_FILENAME
from lighthouse.monitor_cache import MonitorCache
from lighthouse.push import PushStore
from lighthouse.scheduler import CheckFn, Scheduler
from lighthouse.source import MonitorSource
from lighthouse.storage import ResultWriter, WriterThread
from lighthouse.watchdog import Watchdog
from lighthouse.web.server import BindError, WebApp
from lighthouse.web.statuspage import Branding

log = logging.getLogger("lighthouse.service")

STALL_S = 10.0  # dispatcher silent this long = the scheduler is stuck


class Prober:
    def __init__(self, cfg: Config, check: CheckFn | None = None) -> None:
        self.cfg = cfg
        dsn = cfg.database.dsn
        self.metrics = Metrics(probe_max_monitors=cfg.http.metrics_max_monitors)
        self.ctx = CheckContext.create(
            allow_cidrs=cfg.checks.ssrf_allow, max_body_bytes=cfg.checks.max_body_bytes,
            default_timeout_s=cfg.checks.default_timeout_s, user_agent=cfg.checks.user_agent)
        self.check: CheckFn = check or (lambda m: run_check(m, self.ctx))
        self.writer = ResultWriter(dsn, cfg.storage, self.metrics,
                                   connect_timeout_s=cfg.database.connect_timeout_s)
        self.policy = AlertPolicy(cfg.alerting)
        self.scheduler = Scheduler(
            self.check, self.on_result, max_concurrency=cfg.scheduler.max_concurrency,
            max_queue=cfg.scheduler.max_queue, metrics=self.metrics,
            check_timeout_s=self._hard_deadline)
        self.scheduler.on_remove = self._forget  # paused/deleted: no stale state or series
        self.cache = MonitorCache(Path(cfg.storage.monitor_cache) if cfg.storage.monitor_cache
                                  else Path(cfg.storage.spool_dir).parent / CACHE_FILENAME)
        self.source = MonitorSource(dsn, self.scheduler, poll_s=cfg.scheduler.reload_poll_s,
                                    connect_timeout_s=cfg.database.connect_timeout_s,
                                    cache=self.cache)
        self.writer_thread = WriterThread(self.writer)
        self.monitors_from = "database"  # or "cache": started while the database was down
        timeout = cfg.database.connect_timeout_s
        conn_kwargs = {"autocommit": True, "connect_timeout": max(1, int(timeout)),
                       "application_name": "lighthouse-prober"}
        self.apool = AsyncConnectionPool(dsn, min_size=0, max_size=cfg.database.pool_max,
                                         open=False, timeout=timeout, kwargs=conn_kwargs)
        self.pool = ConnectionPool(dsn, min_size=0, max_size=cfg.database.pool_max,
                                   open=False, timeout=timeout, kwargs=conn_kwargs)
        self.ctx.push_store = PushStore(self.apool)
        self.dispatcher = AlertDispatcher(cfg.alerting, self.apool, self.ctx, self.metrics)
        # health changes -> incidents table (status page, API, notes), whether or not alerts
        # are sent
        self.incidents = IncidentLog(self.apool, retry_s=cfg.storage.retry_interval_s)
        self.policy.on_change = self._health_changed
        self.maintenance = MaintenanceSchedule(self.apool)
        self.policy.muted = self.maintenance.muted  # alerts held in maintenance windows
        self.fleet: Membership | None = None
        self.verdicts: Verdicts | None = None
        self.location = ""
        self._locations: set[str] = set()
        if cfg.fleet.enabled:
            self._join_fleet()
        self.web = WebApp(metrics=self.metrics, health=self.health, pool=self.pool,
                          title=cfg.http.title, days=cfg.http.status_days,
                          max_monitors=cfg.http.status_max_monitors,
                          live_states=self.live_states,
                          public_url=cfg.alerting.status_page_url,
                          branding=Branding.from_config(cfg.http.logo_url, cfg.http.links))
        self.watchdog = Watchdog(cfg.scheduler.stall_exit_s, lambda: self.scheduler.last_tick)
        self.http_port: int | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False

    def _join_fleet(self) -> None:
        """Membership decides what this prober checks; verdicts across locations decide
        up/down alerts (lighthouse.fleet)."""
        fc = self.cfg.fleet
        self.location = fc.location
        name = fc.name or socket.gethostname()
        if not FLEET_NAME_RE.match(name):
            raise ConfigError(f"fleet.name: the host name {name!r} is not a prober name "
                              "(letters, digits, '.', '_', '-', at most 63); set fleet.name")
        fleet = self.fleet = Membership(self.apool, name, fc.location, fc.lease_s, self.metrics,
                                        on_change=self._members_changed)
        self.verdicts = Verdicts(self.apool, fleet, self.metrics, on_decision=self._decided,
                                 monitor=self.scheduler.get, muted=self.maintenance.muted,
                                 retry_s=self.cfg.storage.retry_interval_s,
                                 flap_window_s=self.cfg.alerting.flap_window_s,
                                 flap_max_transitions=self.cfg.alerting.flap_max_transitions)
        self.source.owns = lambda mid, locations: fleet.current.owns(mid, locations)
        self.policy.shared = lambda m: len(fleet.current.voting(m.locations)) > 1
        self.policy.leads = lambda m: fleet.current.leads(m.locations)

    def _members_changed(self, members: Members) -> None:
        self.source.resync()  # what this prober owns moved: reload within a second
        new_locations = set(members.locations) - self._locations
        self._locations = set(members.locations)
        if new_locations and self.verdicts is not None and self.policy.shared is not None:
            # A location appeared: monitors this prober decided alone may now be shared, and
            # the combined verdict needs this location's current view, not its next change.
            now = datetime.now(UTC)
            for monitor in self.scheduler.monitors():
                state = self.policy.states.get(monitor.id)
                if (state is not None and state.health is not Health.UNKNOWN
                        and self.policy.shared(monitor)):
                    self.verdicts.report(Change(monitor.id, state.health, now,
                                                state.first_bad, monitor))

    def _health_changed(self, change: Change) -> None:
        if (self.verdicts is not None and change.monitor is not None
                and self.policy.shared is not None and self.policy.shared(change.monitor)):
            self.verdicts.report(change)  # the combined verdict records the incident
        else:
            self.incidents.record(change)

    def _decided(self, decision: Decision) -> None:
        if decision.changed:
            self.incidents.record(Change(decision.monitor.id, decision.health,
                                         decision.since or datetime.now(UTC),
                                         first_bad_result(decision), decision.monitor))
        if decision.notify and self.cfg.alerting.enabled:
            self.dispatcher.submit(alert_for(decision))

    def _hard_deadline(self, monitor: Monitor) -> float:
        t = monitor.config.get("timeout_s") or self.cfg.checks.default_timeout_s
        try:
            return float(t) + 5.0
        except (TypeError, ValueError):
            return self.cfg.checks.default_timeout_s + 5.0

    # -- the result path ---------------------------------------------------------------
    def _forget(self, monitor_id: uuid.UUID) -> None:
        self.policy.forget(monitor_id)
        self.metrics.probes.forget(monitor_id)

    def on_result(self, monitor: Monitor, result: CheckResult) -> None:
        result.location = self.location
        self.metrics.probes.observe(monitor, result)
        alerts = self.policy.observe(monitor, result)  # state (and incidents) always
        if alerts and self.cfg.alerting.enabled:
            result.alert_triggered = True
            for alert in alerts:
                self.dispatcher.submit(alert)
        self.writer.submit(result)

    def live_states(self) -> dict[str, str]:
        return {str(mid): str(s.health) for mid, s in list(self.policy.states.items())}

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        # Bind first: a port in use is a one-line start-up error, before anything runs, and
        # /health answers (honestly: "failing" until the scheduler runs) while we wait below.
        await self.apool.open(wait=False)
        self.pool.open(wait=False)
        if self.cfg.http.enabled:
            try:
                self.http_port = self.web.start(self.cfg.http.listen, self.cfg.http.port)
            except BindError as exc:
                await self.apool.close()
                self.pool.close()
                raise StartupError(f"http.listen/http.port: {exc.strerror}") from None
        if self.cfg.scheduler.stall_exit_s > 0:  # from the start: a stall anywhere counts
            self.watchdog.start()
        try:
            await self._start_checking()
        except BaseException:  # e.g. a newer schema refused: leave nothing running behind
            await self.watchdog.stop()
            self.web.stop()
            await self.apool.close()
            self.pool.close()
            raise

    async def _start_checking(self) -> None:
        from lighthouse.db.errors import DatabaseUnreachableError

        try:
            await self._check_schema(first_try=True)
        except DatabaseUnreachableError as exc:
            # Monitoring matters most exactly now: check the last known set, spool the results,
            # and let the database catch up when it is back.
            await self._start_from_cache(str(exc))
            return
        self._start_writers()
        if self.fleet is not None:  # known to the others before choosing what to own
            try:
                await self.fleet.beat()
            except Exception as exc:  # the heartbeat loop keeps trying
                event(log, "first fleet heartbeat failed", logging.WARNING,
                      error=type(exc).__name__)
        try:
            await self.source.initial_load()
        except Exception as exc:  # the source loop keeps retrying
            event(log, "initial monitor load failed", logging.WARNING, error=type(exc).__name__)
        self._start_scheduler()
        self._start_database_tasks()

    async def _check_schema(self, first_try: bool = False) -> None:
        """Migrate if configured, then ensure_schema. The first try gives up at once when the
        server is unreachable (the cache takes over); an older schema is waited for."""
        from lighthouse.db.errors import DatabaseUnreachableError
        from lighthouse.db.migrate import ensure_schema, migrate

        dsn = self.cfg.database.dsn
        if self.cfg.database.apply_migrations:
            await asyncio.to_thread(migrate, dsn)
        try:
            status = await asyncio.to_thread(ensure_schema, dsn, 0.0)
        except DatabaseUnreachableError:
            raise
        except Exception:
            if not first_try:
                raise
            status = await asyncio.to_thread(ensure_schema, dsn, self.cfg.database.schema_wait_s)
        event(log, "schema ok", version=status.current_version)

    def _start_scheduler(self) -> None:
        # What start-up loaded (monitors, modules) lives as long as the process: freezing it
        # keeps full GC collections from re-scanning ~50,000 monitor configs (stalls of
        # 100s of ms in the capacity bench).
        gc.freeze()
        self.scheduler.start()
        self._started = True
        event(log, "prober started", monitors=self.scheduler.monitor_count,
              monitors_from=self.monitors_from,
              concurrency=self.cfg.scheduler.max_concurrency, http_port=self.http_port)

    def _start_writers(self) -> None:
        # The writer runs in its own thread (storage.WriterThread); it tells us from there
        # when writes work again, and the source (on this loop) LISTENs again at once.
        loop = asyncio.get_running_loop()

        def reachable() -> None:
            loop.call_soon_threadsafe(self.source.wake)

        self.writer.on_reachable = reachable
        self.writer_thread.start()
        self._tasks.append(asyncio.create_task(self.incidents.run(), name="lh-incidents"))
        if self.verdicts is not None:
            self._tasks.append(asyncio.create_task(self.verdicts.run(), name="lh-verdicts"))

    def _start_database_tasks(self) -> None:
        self._tasks.append(asyncio.create_task(self.source.run(), name="lh-source"))
        self._tasks.append(asyncio.create_task(self.maintenance.run(), name="lh-windows"))
        if self.fleet is not None:
            self._tasks.append(asyncio.create_task(self.fleet.run(), name="lh-fleet"))
        if self.cfg.database.maintenance_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._maintenance(), name="lh-maint"))

    async def _start_from_cache(self, reason: str) -> None:
        cached = await asyncio.to_thread(self.cache.load)
        margin = self.scheduler.clock() + 2.0
        for monitor in cached:
            self.scheduler.upsert(monitor, not_before=margin)
        self.monitors_from = "cache"
        event(log, "database unreachable at start-up; checking the cached monitors and "
              "spooling results", logging.WARNING, monitors=len(cached), reason=reason)
        self._start_writers()
        self._start_scheduler()
        self._tasks.append(asyncio.create_task(self._await_database(), name="lh-await-db"))

    async def _await_database(self) -> None:
        """Started from the cache: once the schema checks out, switch to the database."""
        from lighthouse.db.errors import DatabaseError, DatabaseUnreachableError

        while True:
            try:
                await self._check_schema()
                break
            except DatabaseUnreachableError:
                await asyncio.sleep(self.cfg.storage.retry_interval_s)
            except DatabaseError as exc:  # e.g. an older schema: keep checking, say why
                event(log, "database back but not usable yet; still checking from the cache",
                      logging.ERROR, error=str(exc).splitlines()[0][:300])
                await asyncio.sleep(max(10.0, self.cfg.storage.retry_interval_s))
        self.monitors_from = "database"
        event(log, "database reachable; monitors now come from it")
        self._start_database_tasks()

    async def _maintenance(self) -> None:
        from lighthouse.db.maintenance import RetentionPolicy, run_maintenance

        policy = RetentionPolicy(
            compact_after=timedelta(days=self.cfg.database.compact_after_days))
        while True:
            try:
                await asyncio.to_thread(run_maintenance, self.cfg.database.dsn, policy)
            except Exception as exc:
                event(log, "maintenance failed", logging.WARNING, error=type(exc).__name__,
                      detail=str(exc).splitlines()[0] if str(exc) else "")
            await asyncio.sleep(self.cfg.database.maintenance_interval_s)

    async def stop(self) -> dict[str, Any]:
        grace = self.cfg.scheduler.shutdown_grace_s
        await self.watchdog.stop()  # the scheduler stops ticking now; TimeoutStopSec takes over
        self.source.stop()
        for task in self._tasks:
            if task.get_name() in ("lh-source", "lh-maint", "lh-await-db", "lh-windows",
                                   "lh-fleet"):
                task.cancel()
        summary = await self.scheduler.stop(grace)
        if self.verdicts is not None:  # the last reports decide (and alert) before we go
            self.verdicts.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.verdicts.drain(), timeout=max(1.0, grace))
        if self.fleet is not None:  # the others take our monitors now, not after the lease
            await self.fleet.leave()
        await self.dispatcher.close(grace)
        await self.writer_thread.close()
        self.incidents.stop()
        with contextlib.suppress(Exception):  # database down: lost on exit, logged by flush
            await asyncio.wait_for(self.incidents.flush(), timeout=max(1.0, grace))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.web.stop()
        await self.apool.close()
        self.pool.close()
        await self.ctx.aclose()
        out = {**summary, "written": self.writer.stats.inserted,
               "spooled": self.writer.stats.spooled, "spool_rows": self.writer.spool.rows,
               "spool_lost": self.writer.spool.lost}
        event(log, "prober stopped", **out)
        return out

    # -- introspection -----------------------------------------------------------------
    def _db_ping(self) -> bool:
        try:
            with self.pool.connection(timeout=2.0) as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:
            return False

    def health(self) -> dict[str, Any]:
        s = self.scheduler
        tick_age = None if s.last_tick is None else round(time.monotonic() - s.last_tick, 3)
        p99 = s.lateness.quantile(0.99)
        db = self._db_ping()
        scheduler_ok = (s.running and tick_age is not None and tick_age < STALL_S
                        and not self.writer_thread.died)
        status = "failing" if not scheduler_ok else ("ok" if db and self.source.listening
                                                     else "degraded")
        w = self.writer
        return {
            "status": status,
            "database": {"reachable": db, "last_write_ok": w.db_ok,
                         "listening": self.source.listening,
                         "monitors_from": self.monitors_from},
            "scheduler": {"running": s.running, "monitors": s.monitor_count,
                          "queue_depth": s.queue_depth, "in_flight": s.in_flight,
                          "last_tick_age_s": tick_age, "checks_completed": s.completed,
                          "lateness_p99_s": None if p99 is None else round(p99, 4),
                          "skipped": dict(s.skipped)},
            "storage": {"buffered": w.buffered, "inserted": w.stats.inserted,
                        "spool_rows": w.spool.rows, "spool_bytes": w.spool.size_bytes,
                        "spool_lost": w.spool.lost, "spilled": w.stats.spilled,
                        "writer_running": not self.writer_thread.died},
            "fleet": None if self.fleet is None else {
                "name": self.fleet.name, "location": self.fleet.location,
                "members": {loc: list(names) for loc, names
                            in self.fleet.current.by_location.items()},
                "heartbeats": self.fleet.beats,
                "verdicts_pending": self.verdicts.pending if self.verdicts else 0},
            "alerts": {"pending": self.dispatcher.pending, "sent": self.dispatcher.sent,
                       "incidents_pending": self.incidents.pending,
                       "failed": self.dispatcher.failed},
        }


async def serve(cfg: Config, check: CheckFn | None = None,
                stop_event: asyncio.Event | None = None) -> dict[str, Any]:
    """Runs until SIGTERM/SIGINT (or stop_event); returns the shutdown summary."""
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    prober = Prober(cfg, check)
    await prober.start()
    await stop.wait()
    event(log, "shutdown requested")
    return await prober.stop()
