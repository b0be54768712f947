"""The test runner Django's suite runs with (TEST_RUNNER), inside runtests.py.

run.py copies this file next to the settings it writes. It is Django's
DiscoverRunner, plus a result class that records the id of every test that
failed, errored or unexpectedly succeeded, written as JSON to the path in
$DJSUITE_RESULTS at the end. With --parallel the workers' results are replayed
into this result object in the main process, so the ids are complete.
"""

from __future__ import annotations

import json
import os
import re
import unittest
from typing import Any

from django.test.runner import DiscoverRunner

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

    return RecordingResult


class RecordingRunner(DiscoverRunner):
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
                        "failed": getattr(result, "failed_ids", {}),
                    },
                    out,
                    indent=1,
                    sort_keys=True,
                )
        return super().suite_result(suite, result, **kwargs)
