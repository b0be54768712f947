"""A test runner that queries the real database before the test databases exist.

Pooled backends that key their pools by alias alone then hand the test run a
connection to the real database; this runner makes the demo's own test run
prove that does not happen here.
"""

from typing import Any

from django.db import connections
from django.test.runner import DiscoverRunner


class QueryFirstRunner(DiscoverRunner):
    def setup_databases(self, **kwargs: Any) -> Any:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT current_database()")
        return super().setup_databases(**kwargs)
