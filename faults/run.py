"""The fault harness: real servers, a throwaway PostgreSQL 15, faults under load.

    python faults/run.py            # the full run (make faults)
    python faults/run.py --short    # the CI run (make faults-short): asserts the targets

Each scenario runs this package ("sqla"), Django's own pool ("djpool") and
Django's plain backend with CONN_MAX_AGE=60 ("plain") side by side: one
server per backend, 12 clients each, the same fault at the same moment.
Targets are asserted for this package only; exit status 1 when one is missed.
Everything the harness starts is stopped at the end, on error and on Ctrl-C.
What it measures and the last results: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import Blackhole, Cluster, PgBouncer, Prober, Sampler
from load import Load, Record, http_request
from metrics import errors_text, ms, summarize
from servers import LABELS, CeleryWorker, WebServer
from stallprobe import StallProbe

BACKENDS = ("sqla", "djpool", "plain")
PORT_DB, PORT_BOUNCER = 25431, 25432
WEB_PORTS = {"sqla": 25435, "djpool": 25436, "plain": 25437}
REDIS_URL = "redis://127.0.0.1:6379/11"
CLIENTS = 12


@dataclass
class Result:
    name: str
    server: str
    fault: str
    metrics: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    checks: list[tuple[str, str, bool]] = field(default_factory=list)

    def check(self, target: str, measured: str, ok: bool) -> None:
        self.checks.append((target, measured, ok))


def package_bounds(options: dict[str, Any] | None = None) -> dict[str, float | None]:
    """The bounds in force, in seconds: the package's defaults, then ``options``."""
    from django_sqla_pool import conf
    from django_sqla_pool.core.postgresql.params import LIBPQ_DEFAULTS

    defaults = conf.PoolSettings()
    libpq = {**LIBPQ_DEFAULTS, **(options or {})}
    bounds: dict[str, float | None] = {
        "connect_grace": getattr(defaults, "connect_grace", None),
        "ping_timeout": getattr(defaults, "ping_timeout", None),
        "connect_timeout": libpq.get("connect_timeout"),
        "keepalives_idle": libpq.get("keepalives_idle"),
    }
    for key in ("connect_grace", "ping_timeout"):
        if options and key in options:
            bounds[key] = options[key]
    tcp_user_timeout = libpq.get("tcp_user_timeout")
    bounds["tcp_user_timeout"] = tcp_user_timeout / 1000 if tcp_user_timeout else None
    return bounds


#: Scheduling slack allowed on top of a bound (a loaded 2-core VM).
SLACK = 2.0

#: The short run's stall scenario: the same mechanisms with shorter bounds, so that a stall
#: longer than every bound fits in CI's budget (the full run keeps the defaults).
SHORT_STALL_OPTIONS = {
    "connect_timeout": 2,
    "ping_timeout": 2,
    "connect_grace": 2,
    "keepalives_idle": 3,
    "keepalives_interval": 1,
    "keepalives_count": 2,
    "tcp_user_timeout": 5000,
}


def stall_bound(bounds: dict[str, float | None], fault: str) -> float | None:
    """Seconds a request may spend inside a stall, by docs/faults.md, from ``bounds``.

    A checkout: the ping of an idle connection (ping_timeout), a new
    connection (connect_timeout), the grace, and the late attempt
    (connect_timeout). Then, on a dead network path (black hole), a query
    fails within tcp_user_timeout while unacknowledged and within about
    keepalives_idle + tcp_user_timeout while waiting for its result. On a
    frozen server (SIGSTOP) only the checkout is bounded: the kernel still
    acknowledges, so a query already sent, or sent on a connection that
    skipped the ping, waits for the server (documented); assert_sigstop()
    applies this bound to the requests that fail, not to those that wait.
    """
    parts = [bounds["ping_timeout"], bounds["connect_grace"], bounds["connect_timeout"]]
    if None in parts:
        return None
    ping, grace, connect = (float(p) for p in parts)  # type: ignore[arg-type]
    checkout = ping + grace + 2 * connect
    if fault == "blackhole":
        if bounds["tcp_user_timeout"] is None:
            return None
        query = float(bounds["keepalives_idle"] or 0) + bounds["tcp_user_timeout"]
        return checkout + query + SLACK
    return checkout + SLACK


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.short = args.short
        self.healthy = 2.0 if self.short else 5.0
        self.after = 3.0 if self.short else 5.0
        self.cluster = Cluster(PORT_DB)
        self.logdir = self.cluster.root / "logs"
        self.blackhole = Blackhole(PORT_DB)
        self.processes: list[Any] = []
        self.bouncers: list[PgBouncer] = []
        self.results: list[Result] = []
        self.prober: Prober | None = None
        self.sampler: Sampler | None = None
        self.bounds = package_bounds()
        self.sqla_options: dict[str, Any] | None = None
        self.probe_results: dict[str, tuple[float, str]] = {}

    # -- life cycle ---------------------------------------------------------------------------

    def setup(self) -> None:
        if Blackhole.available():
            self.blackhole.off()  # rules an earlier, killed run may have left
        self.cluster.remove_stale()
        self.cluster.init()
        self.logdir.mkdir()
        self.prober = Prober(self.cluster)
        self.prober.start()
        self.sampler = Sampler(self.cluster, [f"faults-{b}" for b in BACKENDS])
        self.sampler.start()

    def cleanup(self) -> None:
        # Order matters: the network and the server come back before anything waits on them.
        if self.blackhole.active or Blackhole.available():
            try:
                self.blackhole.off()
            except Exception as exc:
                print(f"!! could not remove the iptables rules: {exc}", file=sys.stderr)
        self.cluster.sigcont()
        for proc in self.processes:
            proc.stop()
        self.processes.clear()
        for bouncer in self.bouncers:
            bouncer.stop()
        self.bouncers.clear()
        if self.prober:
            self.prober.stop()
        if self.sampler:
            self.sampler.stop()
        if self.args.keep_logs:
            print(f"logs kept in {self.logdir}")
        else:
            self.cluster.destroy()
            return
        if self.cluster.running():
            self.cluster.stop("immediate")

    def start_web(
        self, kind: str, db_port: int = PORT_DB, extra_env: dict[str, str] | None = None
    ) -> dict[str, WebServer]:
        servers = {}
        for backend in BACKENDS:
            server = WebServer(kind, backend, WEB_PORTS[backend], db_port, self.logdir, extra_env)
            self.processes.append(server)
            servers[backend] = server
        for server in servers.values():
            server.wait_ready()
        return servers

    def stop_all(self) -> None:
        for proc in self.processes:
            proc.stop()
        self.processes.clear()

    # -- one scenario -------------------------------------------------------------------------

    def loads_for(
        self, servers: dict[str, WebServer], view: str = "q", sleep_every: int = 0
    ) -> dict[str, Load]:
        timeout = self.args.client_timeout
        return {
            b: Load(
                b,
                http_request(s.port, timeout, view, sleep_every),
                CLIENTS,
                think=0.1,
                max_seconds=240,
            )
            for b, s in servers.items()
        }

    def run_fault(
        self, name: str, kind: str, servers: dict[str, WebServer], fault: str, view: str = "q"
    ) -> Result:
        print(f"-- {name}: {LABELS[kind]}, fault {fault}", flush=True)
        assert self.prober and self.sampler
        loads = self.loads_for(servers, view)
        self.sampler.reset()
        started = time.monotonic()
        for load in loads.values():
            load.start()
        # The first second warms the servers up (imports, first connections): not "healthy".
        time.sleep(self.healthy + 1.0)
        notes: list[str] = []
        kills: list[tuple[float, float]] = []
        self.prober.arm()
        t_fault = time.monotonic()
        t_back: float | None = None
        if fault in ("restart-fast", "restart-immediate"):
            self.cluster.restart(fault.split("-")[1])
            t_back = self.wait_back()
            notes.append(
                f"server away {(t_back - t_fault):.2f} s (pg_ctl restart -m {fault.split('-')[1]})"
            )
        elif fault == "outage":
            self.cluster.stop("fast")
            time.sleep(self.args.outage)
            self.cluster.start()
            t_back = self.wait_back()
            notes.append(
                f"server away {(t_back - t_fault):.2f} s (pg_ctl stop -m fast, "
                f"{self.args.outage:.0f} s, start)"
            )
        elif fault == "terminate":
            kill_count = 0
            for i in range(self.args.kills):
                if i:
                    time.sleep(2.0)
                ended, sent, answered = self.cluster.terminate_clients()
                kills.append((sent, answered))
                kill_count += ended
            notes.append(
                f"pg_terminate_backend of every app connection every 2 s, "
                f"{self.args.kills} times ({kill_count} backends ended)"
            )
        elif fault in ("blackhole", "sigstop"):
            probe = None
            if fault == "blackhole":
                self.blackhole.on()
            else:
                probe = StallProbe("127.0.0.1", PORT_DB, self.sqla_options)
                probe.prepare()
                self.cluster.sigstop()
                probe.start()
            stall = self.stall_seconds(fault)
            try:
                time.sleep(stall)
                if probe is not None:
                    # Still waiting at the end of the stall: not bounded.
                    finished = probe.finish(0.1)
                    self.probe_results = dict(probe.results)
                    self.probe_results["finished"] = (0.0, str(finished))
                    self.probe_results["pre_ping"] = (
                        0.0,
                        str(probe.pools["ping"].stats.invalidations["pre_ping"]),
                    )
                    for which, (seconds, outcome) in probe.results.items():
                        notes.append(f"stall probe {which}: {seconds:.2f} s, {outcome}")
            finally:
                if fault == "blackhole":
                    self.blackhole.off()
                else:
                    self.cluster.sigcont()
                if probe is not None:
                    probe.close()
            t_back = time.monotonic()
            what = (
                "iptables DROP of the server's port on lo"
                if fault == "blackhole"
                else "SIGSTOP of the postmaster and every backend"
            )
            notes.append(f"stalled {stall:.0f} s: {what}")
        t_down = self.prober.went_down
        self.prober.disarm()
        time.sleep(self.after)
        return self.finish(
            name, kind, fault, servers, loads, t_fault, t_back, kills, notes, started, t_down
        )

    def wait_back(self, timeout: float = 60) -> float:
        assert self.prober
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.prober.came_back is not None:
                return self.prober.came_back
            if self.prober.went_down is None and time.monotonic() > deadline - timeout + 2:
                # pg_ctl has returned and the probe never saw the server away: back now.
                return time.monotonic()
            time.sleep(0.01)
        raise RuntimeError("the server did not come back within 60 s")

    def finish(
        self,
        name: str,
        kind: str,
        fault: str,
        servers: dict[str, WebServer],
        loads: dict[str, Load],
        t_fault: float | None,
        t_back: float | None,
        kills: list[tuple[float, float]],
        notes: list[str],
        started: float,
        t_down: float | None = None,
    ) -> Result:
        assert self.sampler
        unfinished = []
        for backend, load in loads.items():
            if not load.stop(self.args.client_timeout + 5):
                unfinished.append(backend)
        time.sleep(0.5)
        metrics = {}
        for backend, load in loads.items():
            m = summarize(load.records, t_fault, t_back, kills, started + 1.0)
            m["tracebacks"] = servers[backend].tracebacks()
            # Sent while the server refused connections (not those it cut off in flight).
            down = [
                r
                for r in load.records
                if not r.ok
                and t_down is not None
                and t_back is not None
                and t_down <= r.t0 < t_back
            ]
            m["down_errors"] = Counter(r.error for r in down if not cut_in_flight(r))
            # The server ended their session at shutdown while they were running: in flight.
            cut = [r for r in down if cut_in_flight(r)]
            m["down_cut"] = len(cut)
            m["down_cut_latest"] = max((r.t0 - t_fault for r in cut), default=None)
            m["samples"] = failure_samples(load.records, t_down, t_back)
            # Requests that overlapped a stall: (sent at, seconds inside it, ok, finished
            # how long after it ended).
            m["stall_records"] = [
                (r.t0, r.t1 - max(r.t0, t_fault), r.ok, r.t1 - t_back if r.t1 >= t_back else None)
                for r in load.records
                if t_fault is not None and t_back is not None and r.t0 < t_back and r.t1 > t_fault
            ]
            m["peak_conns"] = self.sampler.peak[f"faults-{backend}"]
            m["idle_in_tx"] = self.sampler.idle_in_tx[f"faults-{backend}"]
            m["unfinished"] = backend in unfinished
            pids = {r.data["pid"] for r in load.records if "pid" in r.data}
            m["worker_pids"] = len(pids)
            if backend == "sqla":
                stats = servers[backend].worker_stats(pids)
                m["leaked"] = sum(s["checked_out"] or 0 for s in stats.values())
                m["stats_workers"] = f"{len(stats)}/{len(pids)}"
            m["shared_backends"] = shared_backends(load.records)
            metrics[backend] = m
        notes.append(f"scenario took {time.monotonic() - started:.0f} s")
        result = Result(name, kind, fault, metrics, notes)
        self.results.append(result)
        print_result(result)
        return result

    # -- scenarios ----------------------------------------------------------------------------

    def web_faults(
        self,
        kind: str,
        faults: list[str],
        view: str = "q",
        sqla_options: dict[str, Any] | None = None,
    ) -> None:
        extra = {"FAULTS_SQLA_OPTIONS": json.dumps(sqla_options)} if sqla_options else None
        self.bounds = package_bounds(sqla_options)
        self.sqla_options = sqla_options
        servers = self.start_web(kind, extra_env=extra)
        try:
            for fault in faults:
                label = f"{fault} ({kind}{', shorter bounds' if sqla_options else ''})"
                result = self.run_fault(label, kind, servers, fault, view)
                if sqla_options:
                    result.notes.append(f"this package's OPTIONS: {sqla_options}")
                self.assert_fault(result)
        finally:
            self.stop_all()
            self.bounds = package_bounds()
            self.sqla_options = None

    def failover(self) -> None:
        """faults/failover.py: a read-only switchover and rotating credentials, each run in a
        child process on clusters of its own (ports 25460-25463); targets for this package."""
        import failover

        if self.short:  # the headline case, with Django's pool beside it: about 50 s
            argv = ["--scenario", "two-hosts", "--variant", "sqla_pool,django_pool"]
            argv += ["--seconds", "10"]
        else:
            argv = ["--scenario", "all", "--variant", "all", "--seconds", "25"]
        print(f"-- failover: faults/failover.py {' '.join(argv)}", flush=True)
        runs = failover.run_children(failover.parse_args(argv))
        print(failover.report(runs), flush=True)
        for run in runs:
            if run.get("variant") in failover.OURS:
                name = f"failover {run.get('scenario')} ({run['variant']})"
                result = Result(name, "failover", str(run.get("scenario")), {})
                for target, measured, ok in failover.checks(run):
                    result.check(target, measured, ok)
                self.results.append(result)

    def preload(self) -> None:
        kind = "gthread-preload"
        servers = self.start_web(kind, extra_env={"FAULTS_QUERY_AT_IMPORT": "1"})
        try:
            fault = "restart-fast"
            result = self.run_fault(f"fork safety ({kind}) + {fault}", kind, servers, fault)
            self.assert_fault(result)
            m = result.metrics["sqla"]
            result.check(
                "each server connection used by one worker process only",
                f"{m['shared_backends']} shared",
                m["shared_backends"] == 0,
            )
        finally:
            self.stop_all()

    def pgbouncer(self, mode: str) -> None:
        bouncer = PgBouncer(self.cluster, PORT_BOUNCER, mode)
        self.bouncers.append(bouncer)
        bouncer.start()
        extra = {"FAULTS_STATEMENT_TIMEOUT": "200", "FAULTS_PGBOUNCER_MODE": mode}
        if mode == "session":  # what docs/pgbouncer.md tells a session-mode user
            extra["FAULTS_SQLA_OPTIONS"] = json.dumps({"server_settings_mode": "set"})
        if mode == "transaction":
            extra["FAULTS_OPTIONS"] = json.dumps({"prepare_threshold": None})
        name = f"PgBouncer {mode} mode, statement_timeout=200"
        print(f"-- {name}", flush=True)
        try:
            servers = self.start_web("gthread", PORT_BOUNCER, extra)
            loads = self.loads_for(servers, sleep_every=5)
            assert self.sampler
            self.sampler.reset()
            started = time.monotonic()
            for load in loads.values():
                load.start()
            time.sleep(self.args.bouncer_seconds)
            result = self.finish(
                name,
                "gthread",
                f"pgbouncer-{mode}",
                servers,
                loads,
                None,
                None,
                [],
                [
                    f"PgBouncer 1.18 pool_mode={mode}, "
                    "ignore_startup_parameters=extra_float_digits,"
                    "options; every 5th request runs pg_sleep(1)"
                ],
                started,
            )
            for backend, load in loads.items():
                result.metrics[backend].update(sleep_outcomes(load.records))
            print_bouncer(result)
            self.assert_bouncer(result, mode)
        finally:
            self.stop_all()
            bouncer.stop()
            self.bouncers.remove(bouncer)

    def celery(self) -> None:
        from celery import Celery

        name = "Celery prefork children"
        print(f"-- {name}", flush=True)
        app = Celery("faults-client", broker=REDIS_URL, backend=REDIS_URL)
        redis_flush()
        workers = {b: CeleryWorker(b, PORT_DB, self.logdir, REDIS_URL) for b in BACKENDS}
        self.processes.extend(workers.values())
        try:
            loads = {}
            for backend, worker in workers.items():
                loads[backend] = Load(
                    backend,
                    celery_request(app, worker.queue, self.args.client_timeout),
                    CLIENTS,
                    think=0.02,
                    max_per_client=self.args.celery_tasks // CLIENTS,
                    max_seconds=120,
                )
            for worker in workers.values():
                wait_celery(app, worker, 60)
            assert self.sampler
            self.sampler.reset()
            started = time.monotonic()
            for load in loads.values():
                load.start()
            for load in loads.values():
                load.join(130)  # each client stops after its share of the tasks
            metrics = {}
            for backend, load in loads.items():
                m = summarize(load.records, None, None, t_warm=started + 1.0)
                m["tracebacks"] = workers[backend].tracebacks()
                m["peak_conns"] = self.sampler.peak[f"faults-{backend}"]
                m["idle_in_tx"] = self.sampler.idle_in_tx[f"faults-{backend}"]
                m["shared_backends"] = shared_backends(load.records)
                parent = workers[backend].parent()
                used = {r.data.get("bpid") for r in load.records}
                m["parent_conn_used"] = parent is not None and parent[1] in used
                m["children"] = len({r.data.get("pid") for r in load.records} - {None})
                metrics[backend] = m
            result = Result(
                name,
                "celery",
                "none",
                metrics,
                [
                    f"{self.args.celery_tasks} tasks per backend from {CLIENTS} "
                    "clients; the parent queried before forking",
                    f"scenario took {time.monotonic() - started:.0f} s",
                ],
            )
            self.results.append(result)
            print_result(result)
            m = metrics["sqla"]
            result.check(
                "every task succeeds with the right result",
                f"{m['failed']} failed, {m['wrong']} wrong of {m['total']}",
                m["failed"] == 0 and m["wrong"] == 0 and m["total"] > 0,
            )
            result.check(
                "children open their own connections",
                f"{m['children']} children, {m['shared_backends']} shared, parent's "
                f"used: {m['parent_conn_used']}",
                m["shared_backends"] == 0 and not m["parent_conn_used"] and m["children"] >= 2,
            )
            result.check(
                "no traceback in the worker's log", str(m["tracebacks"]), m["tracebacks"] == 0
            )
        finally:
            for worker in workers.values():
                worker.stop()
                self.processes.remove(worker)
            redis_flush()

    # -- targets (this package only) ----------------------------------------------------------

    def common_checks(self, result: Result, m: dict[str, Any]) -> None:
        result.check(
            "no wrong result, no protocol error",
            f"{m['wrong']} wrong, {m['protocol']} protocol",
            m["wrong"] == 0 and m["protocol"] == 0,
        )
        result.check(
            "nothing idle in transaction (> 1 s)", str(m["idle_in_tx"]), m["idle_in_tx"] == 0
        )
        if "leaked" in m:
            result.check(
                "no leaked checkout after the load",
                f"{m['leaked']} (workers asked {m['stats_workers']})",
                m["leaked"] == 0,
            )
        result.check(
            "no traceback in the servers' logs", str(m["tracebacks"]), m["tracebacks"] == 0
        )
        result.check(
            "no request stuck",
            f"{m['stuck']} client timeouts, max {ms(m['max_latency'])} ms",
            m["stuck"] == 0 and not m["unfinished"],
        )

    def assert_fault(self, result: Result) -> None:
        m = result.metrics["sqla"]
        fault = result.fault
        self.common_checks(result, m)
        if fault.startswith("restart"):
            result.check(
                f"failed <= clients ({CLIENTS})",
                f"{m['failed']} (in flight at the fault: {m['in_flight']})",
                m["failed"] <= CLIENTS,
            )
            result.check(
                "0 failed after the server is back",
                str(m["failed_after_back"]),
                m["failed_after_back"] == 0,
            )
        elif fault == "outage":
            grace = self.bounds.get("connect_grace")
            down = m["down_errors"]
            other = sum(c for e, c in down.items() if e != "PoolConnectError")
            result.check(
                "requests sent while the server is down fail with PoolConnectError "
                "(except queries the shutdown cut in flight)",
                f"{sum(down.values())} failed, {other} with another error; "
                f"{m['down_cut']} cut in flight",
                sum(down.values()) > 0 and other == 0,
            )
            latest = m["down_cut_latest"]
            result.check(
                f"queries cut in flight: <= clients ({CLIENTS}), all sent within 1 s of the stop",
                f"{m['down_cut']}, the last sent {ms(latest)} ms after it",
                m["down_cut"] <= CLIENTS and (latest is None or latest <= 1.0),
            )
            if grace is None:
                result.check(
                    "failed within the grace bound", "no connect_grace in this version", False
                )
            else:
                bound = grace + 1.0
                result.check(
                    f"failed within the grace bound ({grace:g} s + 1 s)",
                    f"max {ms(m['max_failed_latency'])} ms",
                    (m["max_failed_latency"] or 0) <= bound,
                )
            result.check(
                "0 failed after the server is back",
                str(m["failed_after_back"]),
                m["failed_after_back"] == 0,
            )
            result.check(
                "first success within 250 ms of the return",
                f"{ms(m['recovery'])} ms",
                m["recovery"] is not None and m["recovery"] <= 0.25,
            )
        elif fault == "terminate":
            result.check(
                "failed <= requests in flight at the kills",
                f"{m['failed']} <= {m['in_flight']}",
                m["failed"] <= m["in_flight"],
            )
        elif fault == "sigstop":
            self.assert_sigstop(result, m)
        elif fault == "blackhole":
            bound = self.stall_bound(fault)
            if bound is None:
                result.check(
                    "no request spends more than the documented bound inside the stall",
                    f"no bound documented; max {ms(m['during_max'])} ms",
                    False,
                )
            else:
                result.check(
                    f"no request spends more than {bound:g} s inside the stall",
                    f"max {ms(m['during_max'])} ms",
                    (m["during_max"] or 0) <= bound,
                )
            result.check(
                "0 failed after the server is back",
                str(m["failed_after_back"]),
                m["failed_after_back"] == 0,
            )

    def assert_sigstop(self, result: Result, m: dict[str, Any]) -> None:
        """What docs/faults.md promises for a frozen server (SIGSTOP), no more.

        New connections are bounded by connect_timeout and pings by
        ping_timeout (the stall probe times both in this package's own pools);
        a checkout that fails inside the stall fails within the checkout bound;
        a query already sent waits for the server (the kernel still ACKs, so no
        timeout fires) and completes once it resumes; then full recovery.
        """
        b = self.bounds
        connect, ping = float(b["connect_timeout"] or 0), float(b["ping_timeout"] or 0)
        probe = self.probe_results
        seconds, outcome = probe.get("connect", (None, "did not finish"))
        result.check(
            f"a new connection fails within connect_timeout ({connect:g} s + {SLACK:g} s)",
            f"{'-' if seconds is None else f'{seconds:.2f} s'}, {outcome}",
            seconds is not None
            and seconds <= connect + SLACK
            and outcome.startswith("PoolConnectError"),
        )
        seconds, outcome = probe.get("ping", (None, "did not finish"))
        pings = probe.get("pre_ping", (0.0, "0"))[1]
        result.check(
            f"the ping of an idle connection gives up within ping_timeout ({ping:g} s), "
            f"then a new connection within connect_timeout (+ {SLACK:g} s)",
            f"{'-' if seconds is None else f'{seconds:.2f} s'}, {pings} failed ping, {outcome}",
            seconds is not None
            and seconds <= ping + connect + SLACK
            and pings == "1"
            and outcome.startswith("PoolConnectError"),
        )
        bound = self.stall_bound("sigstop")
        inside = m["stall_records"]
        failed = [x for x in inside if not x[2]]
        worst_failed = max((x[1] for x in failed), default=0.0)
        result.check(
            f"a request that fails inside the stall fails within the checkout bound ({bound:g} s)",
            f"{len(failed)} failed, slowest {ms(worst_failed)} ms",
            bound is not None and worst_failed <= bound,
        )
        waited = [x for x in inside if bound is not None and x[1] > bound]
        late = [x for x in waited if not x[2] or x[3] is None or x[3] > SLACK]
        result.check(
            "requests that waited for the frozen server (in-flight reads) succeed once it resumes",
            f"{len(waited)} waited, {len(late)} failed or finished > {SLACK:g} s after SIGCONT",
            not late,
        )
        result.check(
            "0 failed after the server is back",
            str(m["failed_after_back"]),
            m["failed_after_back"] == 0,
        )

    def stall_bound(self, fault: str) -> float | None:
        """Seconds a request may spend inside the stall."""
        if self.args.stall_bound is not None:
            return self.args.stall_bound
        return stall_bound(self.bounds, fault)

    def stall_seconds(self, fault: str) -> float:
        """Longer than the bound, so that a request which is not bounded shows it."""
        if self.args.stall is not None:
            return self.args.stall
        return (self.stall_bound(fault) or 12.0) + 8.0

    def assert_bouncer(self, result: Result, mode: str) -> None:
        m = result.metrics["sqla"]
        self.common_checks(result, m)
        enforced = m["sleeps"] > 0 and m["cancelled"] == m["sleeps"] and m["q_failed"] == 0
        refused = m["ok"] == 0 and m["clear_refusals"] == m["total"] > 0
        if mode == "session":
            result.check(
                "statement_timeout enforced",
                f"{m['cancelled']}/{m['sleeps']} pg_sleep(1) cancelled, "
                f"{m['q_failed']} other failures",
                enforced,
            )
        else:
            result.check(
                "statement_timeout enforced, or refused with a clear message",
                f"{m['cancelled']}/{m['sleeps']} cancelled; {m['clear_refusals']}/"
                f"{m['total']} refused naming statement_timeout",
                enforced or refused,
            )


#: A running session that the server ended: its shutdown's message to every backend, or
#: the socket closing under a query. A failed connection attempt says "connection failed" or
#: "connection to server at ... failed" instead (libpq, psycopg 3), and the pool wraps those
#: in PoolConnectError.
SESSION_CUT = re.compile(
    r"terminating connection due to administrator command|server closed the connection "
    r"unexpectedly|could not receive data from server|SSL connection has been closed"
)
CONNECT_ATTEMPT = re.compile(r"connection failed|connection to server at .* failed")


def cut_in_flight(r: Record) -> bool:
    """A request whose connection was checked out and working when the server ended it.

    With ``pg_ctl stop -m fast`` the postmaster refuses new connections at
    once (the prober sees "down") and then terminates every backend: a
    request that checked out a live connection in between has its query cut
    ("terminating connection due to administrator command"). That is a
    request in flight, a plain OperationalError by design (docs/faults.md);
    only the application knows whether to repeat it.
    """
    return (
        not r.ok
        and r.error == "OperationalError"
        and bool(SESSION_CUT.search(r.msg))
        and not CONNECT_ATTEMPT.search(r.msg)
    )


def failure_samples(records: list[Record], t_down: float | None, t_back: float | None) -> list[str]:
    """Failures a target counts against, when they were sent and why: up to 3 sent
    after the return, and up to 3 other than PoolConnectError while the server was down."""
    if t_back is None:
        return []
    picked = [r for r in records if not r.ok and r.t0 >= t_back][:3]
    if t_down is not None:
        picked += [
            r
            for r in records
            if not r.ok
            and t_down <= r.t0 < t_back
            and r.error != "PoolConnectError"
            and not cut_in_flight(r)
        ][:3]
    return [
        f"sent {1000 * (r.t0 - t_back):+.0f} ms from the return, {1000 * r.latency:.0f} ms: "
        f"{r.error}: {' '.join(r.msg.split())[:160]}"
        for r in picked
    ]


def shared_backends(records: list[Record]) -> int:
    """Server backends (by pid) that answered for more than one client process."""
    owners: dict[Any, set] = {}
    for r in records:
        if r.ok and "bpid" in r.data:
            owners.setdefault(r.data["bpid"], set()).add(r.data["pid"])
    return sum(1 for pids in owners.values() if len(pids) > 1)


def sleep_outcomes(records: list[Record]) -> dict[str, Any]:
    sleeps = [r for r in records if r.kind == "sleep"]
    return {
        "sleeps": len(sleeps),
        "cancelled": sum(r.ok and r.data.get("outcome") == "cancelled" for r in sleeps),
        "slept": sum(r.ok and r.data.get("outcome") == "slept" for r in sleeps),
        "q_failed": sum(not r.ok for r in records if r.kind == "q"),
        "ok": sum(r.ok for r in records),
        "clear_refusals": sum((not r.ok) and "statement_timeout" in r.msg for r in records),
        "setting": Counter(r.data.get("setting") for r in sleeps if r.ok).most_common(1),
    }


def celery_request(app: Any, queue: str, timeout: float):  # type: ignore[no-untyped-def]
    import random

    def request() -> Record:
        k, token = random.randint(1, 1000), f"{random.getrandbits(48):x}"
        t0 = time.monotonic()
        try:
            data = app.send_task("faults.probe", args=[k, token], queue=queue).get(timeout=timeout)
        except Exception as exc:
            return Record(t0, time.monotonic(), False, "task", type(exc).__name__, str(exc))
        t1 = time.monotonic()
        if "error" in data:
            return Record(t0, t1, False, "task", data["error"], data["msg"], data=data)
        return Record(t0, t1, True, "task", wrong=bool(data.get("wrong")), data=data)

    return request


def wait_celery(app: Any, worker: CeleryWorker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"{worker.name} exited; see {worker.log}")
        try:
            app.send_task("faults.probe", args=[1, "x"], queue=worker.queue).get(timeout=2)
            return
        except Exception:
            pass
    raise RuntimeError(f"{worker.name} not ready in {timeout} s; see {worker.log}")


def redis_flush() -> None:
    """Empty the harness's own Redis database (db 11) of queues and results."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


# -- output ------------------------------------------------------------------------------------

HEADER = (
    "backend",
    "failed/total",
    "in flight",
    "failed after back",
    "recovery ms",
    "p50/p99 healthy ms",
    "p50/p99/max fault ms",
    "peak conns",
    "errors",
)


def row(backend: str, m: dict[str, Any]) -> tuple[str, ...]:
    return (
        backend,
        f"{m['failed']}/{m['total']}",
        str(m.get("in_flight", "-")),
        str(m.get("failed_after_back", "-")),
        ms(m.get("recovery")),
        f"{ms(m['healthy_p50'])}/{ms(m['healthy_p99'])}",
        f"{ms(m.get('fault_p50'))}/{ms(m.get('fault_p99'))}/{ms(m.get('fault_max'))}",
        str(m["peak_conns"]),
        errors_text(m),
    )


def table(rows: list[tuple[str, ...]], header: tuple[str, ...] = HEADER) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def print_result(result: Result) -> None:
    print(f"\n### {result.name}: {LABELS.get(result.server, result.server)}")
    for note in result.notes:
        print(f"({note})")
    print(table([row(b, m) for b, m in result.metrics.items()]))
    extras = []
    for b, m in result.metrics.items():
        bits = [
            f"wrong {m['wrong']}",
            f"protocol {m['protocol']}",
            f"stuck {m['stuck']}",
            f"idle in tx {m['idle_in_tx']}",
            f"tracebacks {m['tracebacks']}",
        ]
        if "leaked" in m:
            bits.append(f"leaked {m['leaked']}")
        if m.get("during_total"):
            bits.append(
                f"during the fault {m['during_ok']}/{m['during_total']} ok, max "
                f"{ms(m['during_max'])} ms"
            )
        if m["shared_backends"]:
            bits.append(f"server connections shared by processes {m['shared_backends']}")
        extras.append(f"{b}: " + ", ".join(bits))
        extras += [f"  {b} failure: {sample}" for sample in m.get("samples", [])]
    print("\n".join(extras), flush=True)


def print_bouncer(result: Result) -> None:
    for b, m in result.metrics.items():
        print(
            f"{b}: pg_sleep(1) cancelled {m['cancelled']}/{m['sleeps']}, ran to the end "
            f"{m['slept']}; SHOW statement_timeout {m['setting']}; "
            f"sample error: {next(iter(m['error_sample'].values()), '-')[:160]}"
        )


def print_checks(results: list[Result]) -> int:
    missed = 0
    print("\n## Targets (this package)")
    for result in results:
        for target, measured, ok in result.checks:
            missed += not ok
            print(f"{'PASS' if ok else 'FAIL'}  {result.name}: {target}: {measured}")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", action="store_true", help="the CI run (a few minutes)")
    parser.add_argument(
        "--only",
        nargs="*",
        help="scenario groups: gthread sync uvicorn preload pgbouncer celery failover "
        "(faults/failover.py, clusters of its own on ports 25460-25463)",
    )
    parser.add_argument("--faults", nargs="*", help="only these faults in the gthread group")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--stall", type=float, default=None, help="seconds of stall")
    parser.add_argument("--stall-bound", type=float, default=None)
    parser.add_argument("--kills", type=int, default=None)
    parser.add_argument("--client-timeout", type=float, default=60.0)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    args.kills = args.kills or (3 if args.short else 5)
    args.bouncer_seconds = 4.0 if args.short else 10.0
    args.celery_tasks = 240 if args.short else 1200
    groups = args.only or [
        "gthread",
        "sync",
        "uvicorn",
        "preload",
        "pgbouncer",
        "celery",
        "failover",
    ]

    harness = Harness(args)
    started = time.monotonic()

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell that starts the harness in the background ignores SIGINT for it.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        print(
            f"# fault harness ({'short' if args.short else 'full'}), {platform.node()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, data "
            f"{harness.cluster.root}; package bounds {harness.bounds}",
            flush=True,
        )
        harness.setup()
        gthread_faults = ["restart-fast", "restart-immediate", "terminate", "outage"]
        if not args.short:
            # With the default bounds the black hole lasts 90 s: the full run only.
            gthread_faults += ["blackhole", "sigstop"] if Blackhole.available() else ["sigstop"]
        if args.faults:
            gthread_faults = [f for f in gthread_faults if f in args.faults]
        if "gthread" in groups and gthread_faults:
            harness.web_faults("gthread", gthread_faults)
        short_stalls = ["blackhole", "sigstop"] if Blackhole.available() else ["sigstop"]
        if args.faults:
            short_stalls = [f for f in short_stalls if f in args.faults]
        if "gthread" in groups and args.short and short_stalls:
            harness.web_faults("gthread", short_stalls, sqla_options=SHORT_STALL_OPTIONS)
        if "sync" in groups and not args.short:
            harness.web_faults("sync", ["restart-fast", "restart-immediate"])
        if "uvicorn" in groups:
            harness.web_faults(
                "uvicorn",
                ["restart-fast"] if args.short else ["restart-fast", "restart-immediate", "outage"],
                view="aq",
            )
        if "preload" in groups:
            harness.preload()
        if "pgbouncer" in groups:
            harness.pgbouncer("session")
            harness.pgbouncer("transaction")
        if "celery" in groups:
            harness.celery()
        if "failover" in groups:
            harness.failover()
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        harness.cleanup()
        return 130
    except Exception:
        harness.cleanup()
        raise
    harness.cleanup()
    missed = print_checks(harness.results)
    print(f"\nwall time {time.monotonic() - started:.0f} s; {missed} target(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
