"""The fault harness on MariaDB: a throwaway server, real gunicorn workers, faults under load.

    python faults/mariadb.py                  # restart, KILL storm, wait_timeout (make faults)
    python faults/mariadb.py --only restart   # one scenario (make faults-short runs this one)

Each scenario runs this package's MySQL ENGINE ("sqla") and Django's MySQL
backend with CONN_MAX_AGE=0 ("plain0") and CONN_MAX_AGE=60 with health checks
("plain60") side by side: one gunicorn (gthread, 2 workers x 8 threads) per
backend, 12 clients each, the same fault at the same moment, on a MariaDB of
its own (mariadb-install-db into a temporary folder, 127.0.0.1:25407; the
tests' server is 25406). Targets are asserted for this package only; exit
status 1 when one is missed. Everything started is stopped at the end.
Results: docs/reliability.md, "MySQL and MariaDB".
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.mysqlserver

from load import Load, Record, http_request
from metrics import errors_text, ms, summarize
from servers import WebServer

from tests.mysqlserver import MariaDB

BACKENDS = ("sqla", "plain0", "plain60")
LABELS = {
    "sqla": "django-sqla-pool",
    "plain0": "Django MySQL, CONN_MAX_AGE=0",
    "plain60": "Django MySQL, CONN_MAX_AGE=60 + health checks",
}
PORT_DB = 25407
WEB_PORTS = {"sqla": 25445, "plain0": 25446, "plain60": 25447}
CLIENTS = 12

#: The server ended a session that a request was using (shutdown, KILL, idle limit):
#: 1053 shutdown in progress, 1927 connection killed, 2006 gone away, 2013 lost, 4031 idle.
SESSION_CUT = re.compile(r"\((1053|1927|2006|2013|4031),")
#: A new connection the server refused (2002/2003 can't connect) or this package's wrapper.
CONNECT_FAILED = re.compile(r"\((2002|2003),")


def classify(r: Record, t_fault: float, t_back: float | None) -> str:
    """Why a failed request failed: in flight, refused while the server was away, or after."""
    if t_back is not None and r.t0 >= t_back:
        return "after back"
    if r.error == "PoolConnectError" or CONNECT_FAILED.search(r.msg):
        return "connect refused"
    if SESSION_CUT.search(r.msg):
        # Its session was ended under it: the request held a live connection (a query sent,
        # or a checkout that the server had not closed yet when it passed the check).
        return "in flight" if r.t0 < t_fault or r.t1 >= t_fault else "other"
    return "other"


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server = MariaDB(port=PORT_DB, **{"max-connections": "200"})
        self.logdir = Path(tempfile.mkdtemp(prefix="faults-mariadb-logs-"))
        self.web: dict[str, WebServer] = {}
        self.results: list[dict[str, Any]] = []
        self.checks: list[tuple[str, str, bool]] = []

    # -- life cycle ---------------------------------------------------------------------------

    def setup(self) -> None:
        self.server.start()
        self.sql(
            "CREATE DATABASE faults",
            "CREATE TABLE faults.faults_item (id BIGINT PRIMARY KEY, value INT NOT NULL)",
            "INSERT INTO faults.faults_item SELECT seq, seq * 7 + 3 FROM faults.seq_1_to_1000",
        )

    def sql(self, *statements: str) -> list[tuple[Any, ...]]:
        import MySQLdb

        conn = MySQLdb.connect(**self.server.params(), autocommit=True, connect_timeout=5)
        try:
            rows: list[tuple[Any, ...]] = []
            cursor = conn.cursor()
            for statement in statements:
                cursor.execute(statement)
                rows = list(cursor.fetchall())
            return rows
        finally:
            conn.close()

    def start_web(self) -> None:
        extra = {"FAULTS_FAMILY": "mysql"}
        for backend in BACKENDS:
            self.web[backend] = WebServer(
                "gthread", backend, WEB_PORTS[backend], PORT_DB, self.logdir, extra
            )
        for server in self.web.values():
            server.wait_ready()

    def stop_web(self) -> None:
        for server in self.web.values():
            server.stop()
        self.web.clear()

    def cleanup(self) -> None:
        self.stop_web()
        self.server.cleanup()
        if not self.args.keep_logs:
            for log in self.logdir.glob("*"):
                log.unlink()
            self.logdir.rmdir()
        else:
            print(f"logs kept in {self.logdir}")

    def loads(self) -> dict[str, Load]:
        return {
            b: Load(b, http_request(s.port, 30.0), CLIENTS, think=0.1, max_seconds=120)
            for b, s in self.web.items()
        }

    def started_loads(self, warm: float = 3.0) -> tuple[dict[str, Load], float]:
        """Start one load per backend; after ``warm`` seconds, the loads and when they began."""
        loads = self.loads()
        started = time.monotonic()
        for load in loads.values():
            load.start()
        time.sleep(warm)
        return loads, started

    # -- scenarios ----------------------------------------------------------------------------

    def restart(self) -> None:
        """A clean restart (SIGTERM, wait for the shutdown, start) under load."""
        name = "restart"
        print(f"-- {name}", flush=True)
        self.start_web()
        try:
            loads, started = self.started_loads()
            t_fault = time.monotonic()
            self.server.restart()
            t_back = time.monotonic()
            time.sleep(4.0)
            note = f"server away {t_back - t_fault:.2f} s (SIGTERM, shutdown, start)"
            result = self.finish(name, loads, t_fault, t_back, [], started, [note])
            m = result["metrics"]["sqla"]
            causes = m["causes"]
            self.check(
                name,
                "only requests in flight at the restart fail",
                f"{m['failed']} failed: {dict(causes) or 'none'}",
                set(causes) <= {"in flight"},
            )
            self.check(
                name,
                "0 failed after the server is back",
                str(m["failed_after_back"]),
                m["failed_after_back"] == 0,
            )
        finally:
            self.stop_web()

    def kill_storm(self) -> None:
        """KILL every pooled connection from another session, every 2 s, several times."""
        name = "KILL storm"
        print(f"-- {name}", flush=True)
        self.start_web()
        try:
            loads, started = self.started_loads()
            # Each round's span, from the listing to the last KILL: a request running at
            # any moment of it may be cut (as in faults/run.py's terminate).
            kills: list[tuple[float, float]] = []
            killed = 0
            for i in range(self.args.kills):
                if i:
                    time.sleep(2.0)
                begun = time.monotonic()
                ids = self.sql(
                    "SELECT ID FROM information_schema.PROCESSLIST "
                    "WHERE DB = 'faults' AND ID <> CONNECTION_ID()"
                )
                for (thread_id,) in ids:
                    try:
                        self.sql(f"KILL {int(thread_id)}")
                        killed += 1
                    except Exception:  # gone between the listing and the KILL
                        pass
                kills.append((begun, time.monotonic()))
            time.sleep(3.0)
            note = f"KILL of every connection to the database every 2 s, {len(kills)} times"
            result = self.finish(
                name, loads, kills[0][0], None, kills, started, [f"{note} ({killed} killed)"]
            )
            m = result["metrics"]["sqla"]
            cut = sum(1 for r in loads["sqla"].records if not r.ok and SESSION_CUT.search(r.msg))
            self.check(
                name,
                "only requests in flight at a KILL fail (no dead idle connection handed out)",
                f"{m['failed']} failed, {cut} of them cut in session; in flight at the kills "
                f"{m['in_flight']}",
                m["failed"] <= m["in_flight"] and m["failed"] == cut,
            )
        finally:
            self.stop_web()

    def wait_timeout(self) -> None:
        """SET GLOBAL wait_timeout=2, load, idle 3 s (the server closes idle sessions), load."""
        name = "wait_timeout=2, idle 3 s"
        print(f"-- {name}", flush=True)
        self.sql("SET GLOBAL wait_timeout = 2")
        try:
            self.start_web()  # after the SET: sessions opened from now on get 2 s
            first, _ = self.started_loads()
            for load in first.values():
                load.stop(35)
            time.sleep(3.0)
            closed = self.sql(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = 'faults'"
            )[0][0]
            loads, started = self.started_loads(warm=4.0)
            note = (
                f"3 s of load, 3 s idle (server sessions left to the database: {closed}), "
                "then 4 s of load; counted: the second load"
            )
            result = self.finish(name, loads, None, None, [], started, [note])
            m = result["metrics"]["sqla"]
            self.check(name, "no request fails", f"{m['failed']}/{m['total']}", m["failed"] == 0)
        finally:
            self.stop_web()
            self.sql("SET GLOBAL wait_timeout = 28800")

    # -- results ------------------------------------------------------------------------------

    def finish(
        self,
        name: str,
        loads: dict[str, Load],
        t_fault: float | None,
        t_back: float | None,
        kills: list[tuple[float, float]],
        started: float,
        notes: list[str],
    ) -> dict[str, Any]:
        for load in loads.values():
            load.stop(35)
        metrics: dict[str, dict[str, Any]] = {}
        for backend, load in loads.items():
            m = summarize(load.records, t_fault, t_back, kills, started + 1.0)
            m["tracebacks"] = self.web[backend].tracebacks()
            causes: dict[str, int] = {}
            if t_fault is not None:
                for r in load.records:
                    if not r.ok:
                        cause = classify(r, t_fault, t_back)
                        causes[cause] = causes.get(cause, 0) + 1
            m["causes"] = causes
            if backend == "sqla":
                pids = {r.data["pid"] for r in load.records if "pid" in r.data}
                stats = self.web[backend].worker_stats(pids)
                m["leaked"] = sum(s["checked_out"] or 0 for s in stats.values())
            metrics[backend] = m
        result = {"name": name, "metrics": metrics, "notes": notes}
        self.results.append(result)
        m = metrics["sqla"]
        self.check(name, "no wrong result", str(m["wrong"]), m["wrong"] == 0)
        self.check(name, "no leaked checkout after the load", str(m["leaked"]), m["leaked"] == 0)
        print_result(result)
        return result

    def check(self, scenario: str, target: str, measured: str, ok: bool) -> None:
        self.checks.append((f"{scenario}: {target}", measured, ok))


HEADER = (
    "backend",
    "failed/total",
    "in flight at the fault",
    "failed: why",
    "failed after back",
    "p50/p99 healthy ms",
    "max ms",
    "errors",
)


def print_result(result: dict[str, Any]) -> None:
    print(f"\n### {result['name']}")
    for note in result["notes"]:
        print(f"({note})")
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for backend, m in result["metrics"].items():
        why = ", ".join(f"{k} {v}" for k, v in sorted(m["causes"].items())) or "-"
        cells = (
            LABELS[backend],
            f"{m['failed']}/{m['total']}",
            str(m.get("in_flight", "-")),
            why,
            str(m.get("failed_after_back", "-")),
            f"{ms(m['healthy_p50'])}/{ms(m['healthy_p99'])}",
            ms(m["max_latency"]),
            errors_text(m),
        )
        print("| " + " | ".join(cells) + " |")
    for backend, m in result["metrics"].items():
        samples = {k: " ".join(v.split())[:140] for k, v in m["error_sample"].items()}
        if samples:
            print(f"{backend} errors: {samples}")
    print(flush=True)


SCENARIOS = ("restart", "kill", "wait_timeout")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    harness = Harness(args)
    started = time.monotonic()

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    print(
        f"# fault harness on MariaDB, {platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}, server on "
        f"127.0.0.1:{PORT_DB} in {harness.server.base}",
        flush=True,
    )
    try:
        harness.setup()
        version = harness.sql("SELECT VERSION()")[0][0]
        print(f"MariaDB {version}", flush=True)
        scenarios = {
            "restart": harness.restart,
            "kill": harness.kill_storm,
            "wait_timeout": harness.wait_timeout,
        }
        for scenario in args.only:
            scenarios[scenario]()
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        harness.cleanup()
        return 130
    except Exception:
        harness.cleanup()
        raise
    harness.cleanup()
    missed = 0
    print("## Targets (this package)")
    for target, measured, ok in harness.checks:
        missed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {target}: {measured}")
    print(f"\nwall time {time.monotonic() - started:.0f} s; {missed} target(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
