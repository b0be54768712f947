"""The alert rules and dashboard queries of docs/observability.md are the tested ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def fenced(text: str, language: str, after: str) -> str:
    start = text.index(f"```{language}\n", text.index(after)) + len(language) + 4
    return text[start : text.index("```", start)]


def test_the_documented_rules_are_the_rules_file() -> None:
    doc = (DOCS / "observability.md").read_text()
    assert (
        fenced(doc, "yaml", "## Alerts and dashboards")
        == (DOCS / "prometheus-rules.yml").read_text()
    )


def promtool() -> str:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not found:
        pytest.skip("promtool not installed (Debian: the prometheus package)")
    return found


def test_promtool_checks_the_rules_and_their_unit_tests() -> None:
    tool = promtool()
    run([tool, "check", "rules", "prometheus-rules.yml"])
    run([tool, "test", "rules", "prometheus-rules.test.yml"])


def test_promtool_parses_the_dashboard_queries(tmp_path: Path) -> None:
    tool = promtool()
    block = fenced((DOCS / "observability.md").read_text(), "promql", "Grafana queries")
    queries = [
        " ".join(line.strip() for line in chunk.splitlines() if not line.startswith("#"))
        for chunk in block.strip().split("\n\n")
    ]
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, query in enumerate(queries):
        lines += [f"      - record: query_{i}", f"        expr: {json.dumps(query)}"]
    (tmp_path / "queries.yml").write_text("\n".join(lines) + "\n")
    result = run([tool, "check", "rules", str(tmp_path / "queries.yml")])
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=DOCS, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result
