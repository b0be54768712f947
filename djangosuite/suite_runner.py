"""The test runner Django's suite runs with (TEST_RUNNER), inside runtests.py.

run.py copies this file next to the settings it writes. It is Django's
DiscoverRunner, plus result classes that record the id of every test that
failed, errored or unexpectedly succeeded, written as JSON to the path in
$DJSUITE_RESULTS at the end.

With --parallel, each worker reports by test index and the main process
replays the events on its own list of tests; in backends.postgresql that
replay names the wrong test (seen with Django 6.1: the error of
test_pool_options_not_mutated shown as test_nodb_cursor_reraise_exceptions).
So the workers' result class sends each failed test's id itself, and those
ids are the ones recorded in a parallel run.
"""

from __future__ import annotations

import json
import os
import re
import unittest
from typing import Any

from django.test.runner import (
    DiscoverRunner,
    ParallelTestSuite,
    RemoteTestResult,
    RemoteTestRunner,
)

# unittest's stand-in for an error in setUpClass/setUpModule/tearDownClass:
# "setUpClass (backends.tests.SomeTests)" is recorded as the class's id.
_FIXTURE_ERROR = re.compile(r"^\w+ \((?P<id>[\w.]+)\)$")


def test_id(test: Any) -> str:
    name = test.id()
    match = _FIXTURE_ERROR.match(name)
    return match.group("id") if match else name


def recording(base: type[unittest.TextTestResult]) -> type[unittest.TextTestResult]:
    class RecordingResult(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.failed_ids: dict[str, str] = {}
            self.remote_ids: dict[str, str] = {}

        def _record(self, test: Any, kind: str) -> None:
            self.failed_ids.setdefault(test_id(test), kind)

        def addError(self, test: Any, err: Any) -> None:  # noqa: N802
            super().addError(test, err)
            self._record(test, "error")

        def addFailure(self, test: Any, err: Any) -> None:  # noqa: N802
            super().addFailure(test, err)
            self._record(test, "failure")

        def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:  # noqa: N802
            super().addSubTest(test, subtest, err)
            if err is not None:
                failure = issubclass(err[0], test.failureException)
                self._record(test, "failure" if failure else "error")

        def addUnexpectedSuccess(self, test: Any) -> None:  # noqa: N802
            super().addUnexpectedSuccess(test)
            self._record(test, "unexpected success")

        def recordFailed(self, test: Any, failed_id: str, kind: str) -> None:  # noqa: N802
            # Replayed from a worker (ParallelTestSuite.handle_event); ``test``
            # is the main process's guess, ``failed_id`` the worker's truth.
            self.remote_ids.setdefault(failed_id, kind)

    return RecordingResult


class IdReportingRemoteResult(RemoteTestResult):
    """A worker's result: every failure also sends ("recordFailed", index, id, kind)."""

    def _report(self, test: Any, kind: str) -> None:
        self.events.append(("recordFailed", self.test_index, test_id(test), kind))

    def addError(self, test: Any, err: Any) -> None:  # noqa: N802
        super().addError(test, err)
        self._report(test, "error")

    def addFailure(self, test: Any, err: Any) -> None:  # noqa: N802
        super().addFailure(test, err)
        self._report(test, "failure")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:  # noqa: N802
        super().addSubTest(test, subtest, err)
        if err is not None:
            failure = issubclass(err[0], test.failureException)
            self._report(test, "failure" if failure else "error")

    def addUnexpectedSuccess(self, test: Any) -> None:  # noqa: N802
        super().addUnexpectedSuccess(test)
        self._report(test, "unexpected success")


class IdReportingRemoteRunner(RemoteTestRunner):
    resultclass = IdReportingRemoteResult


class IdReportingParallelSuite(ParallelTestSuite):
    runner_class = IdReportingRemoteRunner


class RecordingRunner(DiscoverRunner):
    parallel_test_suite = IdReportingParallelSuite

    def get_resultclass(self) -> Any:
        return recording(super().get_resultclass() or unittest.TextTestResult)

    def suite_result(self, suite: Any, result: Any, **kwargs: Any) -> Any:
        path = os.environ.get("DJSUITE_RESULTS")
        if path:
            with open(path, "w") as out:
                json.dump(
                    {
                        "run": result.testsRun,
                        "skipped": len(result.skipped),
                        "failed": (
                            result.remote_ids
                            if isinstance(suite, ParallelTestSuite)
                            else result.failed_ids
                        ),
                    },
                    out,
                    indent=1,
                    sort_keys=True,
                )
        return super().suite_result(suite, result, **kwargs)
