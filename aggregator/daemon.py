"""`aggregator daemon`: scheduled jobs, the web app, signals.

Theory of operation:

- APScheduler 3 (BackgroundScheduler) runs three jobs: *ingest* (every
  `daemon.ingest_interval` seconds: the pipeline fetches the feeds that are
  due and rescans the content directory, then the outputs are rebuilt if
  anything changed, if an earlier run was cut short, or if the last build is
  older than `daemon.rebuild_interval`), *send* (the weekly email, on
  `[email] schedule` in [site] timezone, or every `daemon.send_interval`
  seconds when that is set: the same job on a faster trigger) and
  *housekeeping*.
- Jobs live in a SQLAlchemyJobStore in the same database, so a restart
  neither forgets nor re-fires them: a job whose trigger is unchanged keeps
  its stored next run time, and one that came due while the daemon was down
  runs once at start-up (coalesce) if it is within `daemon.misfire_grace_time`
  (APScheduler's default of one second would silently skip a weekly send
  after a restart). The newsletter's exactly-once record is the final guard.
- One worker thread runs jobs one at a time (max_instances=1 as well), and
  each job holds the run lock (lock.py), so a cron `aggregator run` on the
  same data never overlaps a daemon job.
- uvicorn serves web.py's app in a second thread; the main thread only waits
  for signals. SIGTERM/SIGINT: no new jobs start, the running one gets
  `daemon.shutdown_timeout` seconds to finish (ingest checks between its
  ingest and build steps), then the process exits 0; a job still running is
  abandoned, which is safe because every output is written atomically and
  every database write is a transaction (its run record stays "interrupted"
  and the next start rebuilds). SIGHUP re-reads config.toml; an invalid
  file is logged and the old configuration kept.

Job functions in a persistent job store must be importable by name, so the
scheduled callable is the module-level `_job`, which finds the running
Daemon in `_current`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from aggregator import __version__, app, clock, logs, web
from aggregator import config as config_mod
from aggregator.config import Config
from aggregator.errors import AggregatorError, ConfigError
from aggregator.lock import LockHeld, hold
from aggregator.newsletter.schedule import weekly_trigger
from aggregator.store import SCHEDULER_TABLE, Store

log = logging.getLogger(__name__)

#: (config, store, token, now) -> the address unsubscribed, or None for an unknown token
UnsubscribeAction = Callable[[Config, Store, str, datetime], str | None]

#: how long a job waits for the run lock (a cron run holding it) before giving up;
#: ingest comes round again soon, the weekly send does not
LOCK_WAIT = {app.INGEST: 0.0, app.BUILD: 60.0, app.SEND: 3600.0, app.HOUSEKEEPING: 60.0}

#: the one-off job that runs a weekly send found missed at start-up
CATCH_UP = "send-catch-up"
#: the one-off job that builds at start-up when outputs are missing
START_BUILD = "start-build"

_current: Daemon | None = None


def _job(name: str, spec: str) -> None:
    """The callable APScheduler stores (by name); `spec` identifies the trigger."""
    daemon = _current
    if daemon is None:  # pragma: no cover - the scheduler only runs inside a Daemon
        log.warning("job %s fired with no daemon running", name)
        return
    daemon.run_job(name)


class Daemon:
    """The long-running service. `start()`, then `wait()`; or `main()` does both."""

    def __init__(
        self,
        config_path: Path,
        config: Config,
        *,
        send: app.NewsletterSend | None = None,
        unsubscribe: UnsubscribeAction | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.send_action = send
        self.unsubscribe_action = unsubscribe
        self.host = host or config.daemon.host
        self.port = port or config.daemon.port
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self._reload = threading.Event()
        #: held while a job runs; shutdown waits on it
        self._busy = threading.Lock()
        self.current_job: str | None = None
        #: outputs were missing at start: the first job builds before its own work
        self._build_first = False
        self._store: Store | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._server: Any = None
        self._web_thread: threading.Thread | None = None

    # -- start-up ----------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("daemon not started")
        return self._store

    def start(self) -> None:
        """Open the store, start the scheduler and the web server."""
        global _current
        weekly_trigger(self.config.email.schedule, self.config.site.tz)  # fail early
        self._store = Store.open(self.config.database.url)
        _current = self
        d = self.config.daemon
        self._scheduler = BackgroundScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(engine=self.store.engine, tablename=SCHEDULER_TABLE),
                # one-off jobs worked out afresh at each start (the send catch-up)
                "memory": MemoryJobStore(),
            },
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(d.misfire_grace_time),
            },
            timezone=self.config.site.tz,
        )
        # Paused first: the stored jobs are read and reconciled with the
        # config before anything may fire.
        self._scheduler.start(paused=True)
        had_send = self._scheduler.get_job(app.SEND) is not None
        self._reconcile(self.config)
        if had_send:
            self._catch_up_send()
        self._build_if_missing()
        self._start_web()
        # At every log level: the one line saying where and how it runs.
        logs.announce(
            log,
            "aggregator %s daemon started: web on http://%s:%s/, database %s, %s; pid %s",
            __version__,
            self.host,
            self.port,
            without_password(self.config.database.url),
            self._describe_schedule(self.config),
            os.getpid(),
            extra={"status": "started"},
        )
        self._scheduler.resume()

    def _build_if_missing(self) -> None:
        """Outputs missing (a new, empty volume; files deleted): build now,
        before any other job's work, rather than at the next rebuild_interval."""
        assert self._scheduler is not None
        missing = app.outputs_missing(self.config)
        if missing is None:
            return
        log.warning("%s: building at start", missing, extra={"job": app.BUILD})
        self._build_first = True
        self._scheduler.add_job(
            _job,
            "date",
            run_date=clock.now(),
            args=[app.BUILD, "start"],
            id=START_BUILD,
            jobstore="memory",
            replace_existing=True,
            misfire_grace_time=int(self.config.daemon.misfire_grace_time),
        )

    def _describe_schedule(self, config: Config) -> str:
        d = config.daemon
        if self.send_action is None:
            send = "no send"
        elif d.send_interval > 0:
            send = f"send every {d.send_interval:g} s"
        else:
            send = f"send {config.email.schedule!r} ({config.site.timezone})"
        return (
            f"ingest every {d.ingest_interval:g} s, rebuild at least every "
            f"{d.rebuild_interval:g} s, {send}, housekeeping every {d.housekeeping_interval:g} s"
        )

    def _start_web(self) -> None:
        unsubscribe = None
        if self.unsubscribe_action is not None:
            action = self.unsubscribe_action

            def unsubscribe(token: str) -> str | None:
                return action(self.config, self.store, token, clock.now())

        site = web.create_app(
            self.config.output.dir,
            health=lambda: app.health(self.config, self.store),
            unsubscribe=unsubscribe,
        )
        self._server = web.server(site, self.host, self.port)
        self._web_thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._web_thread.start()
        for _ in range(200):  # bounded: 10 s
            if self._server.started or not self._web_thread.is_alive():
                break
            self._web_thread.join(0.05)
        if not self._server.started:
            self._scheduler_shutdown()
            raise AggregatorError(
                f"cannot serve on {self.host}:{self.port} (is the port in use? "
                "set [daemon] port or --port)"
            )

    def _desired(self, config: Config) -> dict[str, tuple[BaseTrigger, str]]:
        d = config.daemon
        out: dict[str, tuple[BaseTrigger, str]] = {
            app.INGEST: (
                IntervalTrigger(seconds=d.ingest_interval),
                f"interval:{d.ingest_interval}",
            ),
            app.HOUSEKEEPING: (
                IntervalTrigger(seconds=d.housekeeping_interval),
                f"interval:{d.housekeeping_interval}",
            ),
        }
        if self.send_action is not None and d.send_interval > 0:
            # [daemon] send_interval overrides the calendar (trying a setup out,
            # tests); like the other interval jobs it first runs at start-up.
            out[app.SEND] = (
                IntervalTrigger(seconds=d.send_interval),
                f"interval:{d.send_interval}",
            )
        elif self.send_action is not None:
            out[app.SEND] = (
                weekly_trigger(config.email.schedule, config.site.tz),
                f"cron:{config.email.schedule}@{config.site.timezone}",
            )
        return out

    def _reconcile(self, config: Config) -> None:
        """Make the stored schedule match `config`, keeping unchanged jobs' next run."""
        assert self._scheduler is not None
        grace = int(config.daemon.misfire_grace_time)
        desired = self._desired(config)
        for job in self._scheduler.get_jobs():
            if job.id not in desired and job.id != CATCH_UP:
                log.info("removing scheduled job %s", job.id)
                job.remove()
        for job_id, (trigger, spec) in desired.items():
            existing = self._scheduler.get_job(job_id)
            if existing is not None and tuple(existing.args) == (job_id, spec):
                # Unchanged: keep its stored next run time (a send that came
                # due while we were down still fires, once).
                existing.modify(misfire_grace_time=grace, coalesce=True, max_instances=1)
                continue
            first = clock.now() if isinstance(trigger, IntervalTrigger) else None
            self._scheduler.add_job(
                _job,
                trigger,
                args=[job_id, spec],
                id=job_id,
                name=job_id,
                replace_existing=True,
                misfire_grace_time=grace,
                coalesce=True,
                max_instances=1,
                # Interval jobs run once right away; the weekly send waits for its time.
                **({"next_run_time": first} if first is not None else {}),
            )
        for job in self._scheduler.get_jobs():
            log.info("scheduled %s: next run %s", job.id, job.next_run_time, extra={"job": job.id})

    def _catch_up_send(self) -> None:
        """Run a weekly send that came due but has no successful run after it.

        APScheduler advances a job to its next time whenever it *tries* to
        start it, including a try that loses a race with shutdown; this
        check, against our own run records, is what makes sure a due issue
        is not skipped. (The newsletter's exactly-once record makes a
        repeated send harmless.)
        """
        assert self._scheduler is not None
        config, now = self.config, clock.now()
        if config.daemon.send_interval > 0:
            return  # an interval send runs at every start anyway
        grace = config.daemon.misfire_grace_time
        due = weekly_trigger(config.email.schedule, config.site.tz).get_next_fire_time(
            None, now - timedelta(seconds=grace)
        )
        if due is None or due > now:
            return
        stored = self._scheduler.get_job(app.SEND)
        if stored is not None and stored.next_run_time is not None and stored.next_run_time <= now:
            return  # the scheduler fires it itself
        (status,) = self.store.job_statuses([app.SEND])
        if status.last_ok is not None and status.last_ok.started >= due:
            return
        log.warning("the send due at %s has not run: running it now", due, extra={"job": "send"})
        self._scheduler.add_job(
            _job,
            "date",
            run_date=now,
            args=[app.SEND, "catch-up"],
            id=CATCH_UP,
            jobstore="memory",
            replace_existing=True,
            misfire_grace_time=int(grace),
        )

    # -- jobs --------------------------------------------------------------

    def run_job(self, name: str) -> None:
        """Run one job under the run lock; log its outcome, never raise."""
        if self.stop_event.is_set():
            return
        config, store = self.config, self.store
        with self._busy:
            self.current_job = name
            try:
                with hold(config.daemon.lock_file, LOCK_WAIT[name], self.stop_event):
                    if self._build_first and name != app.BUILD:
                        # Whichever job comes first: readers need the outputs now.
                        self._build_first = False
                        app.build_if_due(config, store)
                        if self.stop_event.is_set():
                            return  # stopping: the job itself waits for the next start
                    if name == app.INGEST:
                        self._ingest_and_build(config, store)
                    elif name == app.BUILD:
                        self._build_first = False
                        app.build_if_due(config, store)
                    elif name == app.SEND and self.send_action is not None:
                        app.send(config, store, sender=self.send_action)
                    elif name == app.HOUSEKEEPING:
                        app.housekeeping(config, store)
            except LockHeld as e:
                log.info("%s skipped: %s", name, e, extra={"job": name, "status": "skipped"})
            except AggregatorError as e:
                log.error("%s failed: %s", name, e, extra={"job": name, "status": "failed"})
            except Exception:
                log.exception("%s crashed (a bug)", name, extra={"job": name, "status": "crashed"})
            finally:
                self.current_job = None

    def _ingest_and_build(self, config: Config, store: Store) -> None:
        app.ingest(config, store)
        if self.stop_event.is_set():
            return  # the build stays pending; the next start does it
        app.build_if_due(config, store)

    # -- signals, reload, shutdown -----------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads (main thread only)."""

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            self.stop_event.set()
            self._wake.set()

        def hup(_signum: int, _frame: FrameType | None) -> None:
            self._reload.set()
            self._wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    def wait(self) -> None:
        """Block until asked to stop, reloading the config on SIGHUP."""
        while not self.stop_event.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._reload.is_set():
                self._reload.clear()
                self.reload()

    def reload(self) -> bool:
        """Re-read the config file; keep the old config if the new one is invalid."""
        try:
            new = config_mod.load(self.config_path)
            weekly_trigger(new.email.schedule, new.site.tz)
        except ConfigError as e:
            log.error(
                "config reload failed, keeping the previous configuration: %s",
                e,
                extra={"status": "reload_failed"},
            )
            return False
        old = self.config
        if new.database.url != old.database.url:
            log.warning("database.url changed: it takes effect after a restart")
            new = dataclasses.replace(new, database=old.database)
        if (new.daemon.host, new.daemon.port) != (old.daemon.host, old.daemon.port):
            log.warning("daemon.host/port changed: they take effect after a restart")
        if new.output.dir != old.output.dir:
            log.warning("output.dir changed: the web server follows after a restart")
        self.config = new
        self._reconcile(new)
        log.info("configuration reloaded from %s", self.config_path, extra={"status": "reloaded"})
        return True

    def _scheduler_shutdown(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            # APScheduler 3 race: a scheduler thread woken during shutdown
            # starts due jobs on the stopped executor and moves them on to
            # their next time. Pause, then wait out a pass already under way
            # (it holds the job stores' lock); a job it hands over anyway
            # returns at once (stop is set) and a send is caught up at start.
            self._scheduler.pause()
            with self._scheduler._jobstores_lock:
                pass
            self._scheduler.shutdown(wait=False)

    def shutdown(self) -> bool:
        """Stop cleanly; False if a job was still running after the timeout."""
        global _current
        self.stop_event.set()
        self._scheduler_shutdown()
        if self._server is not None:
            self._server.should_exit = True
        timeout = self.config.daemon.shutdown_timeout
        if not self._busy.acquire(timeout=timeout):
            log.warning(
                "job %s still running after %ss: abandoning it (outputs are atomic, "
                "the next start finishes the work)",
                self.current_job,
                timeout,
                extra={"job": self.current_job, "status": "abandoned"},
            )
            return False
        self._busy.release()
        if self._web_thread is not None:
            self._web_thread.join(5.0)
        if self._store is not None:
            self._store.close()
        _current = None
        log.info("daemon stopped", extra={"status": "stopped"})
        return True


def without_password(url: str) -> str:
    """A database URL fit for a log line: its password (if any) as ***."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.partition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def main(
    config_path: Path,
    config: Config,
    *,
    host: str | None = None,
    port: int | None = None,
) -> int:
    """Run the daemon until SIGTERM/SIGINT; the process's exit code."""
    daemon = Daemon(
        config_path, config, send=app.NEWSLETTER_SEND, unsubscribe=app.unsubscribe_by_token,
        host=host, port=port,
    )  # fmt: skip
    daemon.install_signal_handlers()
    daemon.start()
    try:
        daemon.wait()
    finally:
        clean = daemon.shutdown()
    if not clean:
        logging.shutdown()
        # The job thread cannot be interrupted, and interpreter exit would
        # join it: leave now. The kernel releases the run lock.
        os._exit(0)
    return 0
