"""Every code block in README.md, CONTRIBUTING.md and docs/*.md is run or checked.

Rules for a block (a block that breaks one fails here, named by file and line):

1. Every fenced block names its language: ``python``, ``sh``, ``console``,
   ``text``, ``json``, ``toml``, ``ini``, ``yaml`` or ``promql``. ``text`` is
   for output and usage synopses and is not run, except a synopsis whose first
   line starts ``manage.py <command>``: every ``--option`` in it must be an
   option of that command, and every option of the command must be in it (a
   synopsis may have several such lines, one per form of the command).
2. A ``python`` block runs, in a fresh namespace, inside a test with the test
   database (transactional), after Django is set up: as code in a view, a
   task or ``manage.py shell`` would. It may use the names in READER_NAMES
   without defining them; they stand for the reader's own objects (``user``:
   a saved User, ``my_site``: an AdminSite, ``env``: a django-environ Env).
   The thread's connections are returned afterwards. A block that imports a
   module that is not installed is skipped, with the reason: put the packages
   of an optional integration in the ``test`` extra so CI runs its blocks.
3. A ``python`` block whose first line is a comment starting ``# settings.py``
   is a settings fragment. It runs in a namespace holding a copy of the test
   project's settings (``DATABASES``, ``INSTALLED_APPS``, ``LOGGING``, ...) and
   ``env``; then each UPPERCASE name it assigns must be a Django setting or one
   of this package's (``DJANGO_SQLA_POOL_...``, named in its source), and:
   ``DATABASES`` entries with this package's ENGINE pass the system checks and
   give connection parameters; ``INSTALLED_APPS`` strings import; ``LOGGING``
   is accepted by ``dictConfig`` and leaves the loggers that exist already
   (``django.request``, ...) enabled. A comment line ``# NAME=value`` (NAME in
   capitals) sets that environment variable while the fragment runs, so
   ``env.db_url("DATABASE_URL")`` reads the URL the docs show.
4. An ``sh`` block passes ``bash -n``, and each command in it (split at
   ``&&``, ``||``, ``;``, ``|``; leading ``NAME=value`` environment variables
   must be names the project reads) is checked by SH_RULES against the
   repository: ``make TARGET [VAR=value]`` (a Makefile target; VAR a Makefile
   variable), ``pip install`` (this package's extras exist; other packages are
   named in pyproject.toml), ``python FILE [--options]`` (the file exists and
   mentions each option; ``--help`` if it uses argparse), ``python -m MODULE``
   (the module imports),
   ``[python] manage.py COMMAND [args]`` (the command exists and its parser
   accepts the args), ``tox run -e ENV[,ENV]`` (each ENV is in tox.ini's
   ``env_list``). ``.venv/bin/`` before a command is the project's own venv
   (``make install``) and is checked as the bare command. Any other command
   fails: add a rule to SH_RULES, or mark the block as in rule 5.
5. A block whose fence is preceded by the line
   ``<!-- docs-test: skip: <reason> -->`` (invisible on GitHub and PyPI) is only
   compiled (``python``) or syntax-checked (``sh``). Give the reason; use it
   only for code that needs a process or service of its own (a gunicorn hook
   file, a Celery worker).
6. ``json`` blocks parse; ``toml`` blocks parse (on Python 3.11+); ``ini``
   blocks parse with configparser; ``yaml`` blocks (Kubernetes probes,
   Prometheus configuration) parse with PyYAML (in the ``test`` extra).
   ``promql`` blocks are Prometheus queries, parsed by promtool in
   tests/test_prometheus_rules.py (which also holds the alert rules' ``yaml``
   block to docs/prometheus-rules.yml); here they are text.
7. A ``console`` block is a shell session: lines starting ``$ `` are commands,
   the others their output (not checked). The commands pass ``bash -n``, and
   each ``http://127.0.0.1:PORT/path`` they name resolves in the test
   project's URLconf (the demo's, which ``make demo`` serves).

And around the blocks: README.md's links are absolute (PyPI shows it without
the repository) and those into this repository name files that exist; the
README's options table lists exactly the fields of ``PoolSettings``; the
benchmark summary's counts agree with its table of runs; ``make demo PORT=N``
prints the URL of port N.
"""

from __future__ import annotations

import configparser
import copy
import dataclasses
import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import global_settings, settings
from django.core.management import call_command, get_commands, load_command_class
from django.db import connections

from django_sqla_pool.checks import HOME_URL, pool_setting_errors
from django_sqla_pool.conf import PoolSettings, is_pooled

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = ("python", "sh", "console", "text", "json", "toml", "ini", "yaml", "promql")
SKIP_MARK = re.compile(r"<!--\s*docs-test:\s*skip:\s*(?P<reason>\S.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")
BLOB = f"{HOME_URL}/blob/main/"
RAW = HOME_URL.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"


@dataclasses.dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None  # the reason of a docs-test skip mark

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def is_settings(self) -> bool:
        return self.lang == "python" and self.code.lstrip().startswith("# settings.py")


def blocks_of(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent = len(opening["indent"])
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        before = next((line for line in reversed(lines[:i]) if line.strip()), "")
        mark = SKIP_MARK.search(before)
        body = "\n".join(line[indent:] for line in lines[i + 1 : end])
        found.append(
            Block(path, i + 1, opening["lang"], body + "\n", mark["reason"] if mark else None)
        )
        i = end + 1
    return found


ALL_BLOCKS = [block for path in DOCS for block in blocks_of(path)]


def blocks(select: Callable[[Block], bool]) -> Any:
    chosen = [b for b in ALL_BLOCKS if select(b)]
    return pytest.mark.parametrize("block", chosen, ids=[b.where for b in chosen])


def test_every_block_names_a_known_language() -> None:
    unknown = [f"{b.where} ({b.lang or 'none'})" for b in ALL_BLOCKS if b.lang not in LANGUAGES]
    assert not unknown, f"label these blocks with one of {LANGUAGES}: {unknown}"


def test_the_docs_have_blocks_of_every_kind_these_rules_check() -> None:
    kinds = {(b.lang, b.is_settings) for b in ALL_BLOCKS}
    assert {("python", True), ("python", False), ("sh", False), ("text", False)} <= kinds


# -- python -----------------------------------------------------------------


def compiled(block: Block) -> Any:
    return compile(block.code, block.where, "exec")


def reader_names() -> dict[str, Any]:
    """READER_NAMES: what a block may use without defining it (the reader's own objects)."""
    import environ
    from django.contrib.admin import AdminSite
    from django.contrib.auth.models import User

    return {
        "user": User.objects.create_user("docs-reader", password="docs-reader-pw"),
        "my_site": AdminSite(name="my_site"),
        "env": environ.Env(),
    }


READER_NAMES = ("user", "my_site", "env")


def skip_if_not_installed(error: ModuleNotFoundError, block: Block) -> None:
    top = (error.name or "").split(".")[0]
    if top and importlib.util.find_spec(top) is None:
        pytest.skip(f"{block.where} needs {top!r}, which is not installed")


@blocks(lambda b: b.lang == "python" and not b.is_settings)
@pytest.mark.django_db(transaction=True)
def test_python_block_runs(block: Block) -> None:
    code = compiled(block)
    if block.skip:
        return
    namespace: dict[str, Any] = {"__name__": "docs_block"}
    used = {name for name in READER_NAMES if re.search(rf"\b{name}\b", block.code)}
    namespace.update({k: v for k, v in reader_names().items() if k in used})
    try:
        exec(code, namespace)
    except ModuleNotFoundError as error:
        skip_if_not_installed(error, block)
        raise
    finally:
        connections.close_all()


# -- settings fragments -----------------------------------------------------


def project_settings() -> dict[str, Any]:
    """A copy of the test project's own settings (what its settings.py assigns) and env."""
    module = importlib.import_module(settings.SETTINGS_MODULE)
    names = {k: v for k, v in vars(module).items() if k.isupper() or k == "env"}
    return {k: (v if k == "env" else copy.deepcopy(v)) for k, v in names.items()}


def assigned_names(code: str) -> set[str]:
    """Top-level names a fragment assigns, ``DATABASES`` for ``DATABASES["x"][...] = ...``."""
    import ast

    def root(target: ast.expr) -> str | None:
        while isinstance(target, (ast.Subscript, ast.Attribute)):
            target = target.value
        return target.id if isinstance(target, ast.Name) else None

    names: set[str] = set()
    for node in ast.parse(code).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, (ast.AugAssign, ast.AnnAssign))
            else []
        )
        names.update(name for name in map(root, targets) if name)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func  # DATABASES["default"].update(...), INSTALLED_APPS.append(...)
            if isinstance(func, ast.Attribute) and (name := root(func.value)):
                names.add(name)
    return names


def package_source() -> str:
    package = ROOT / "django_sqla_pool"
    return "\n".join(p.read_text() for p in sorted(package.rglob("*.py")))


def check_databases(databases: dict[str, Any], where: str) -> None:
    pooled = {alias: entry for alias, entry in databases.items() if is_pooled(entry)}
    assert pooled, f"{where}: DATABASES has no entry with this package's ENGINE"
    errors = pool_setting_errors(pooled)
    assert not errors, f"{where}: {[str(e) for e in errors]}"
    from django_sqla_pool.backends.postgresql.base import DatabaseWrapper

    filled = connections.configure_settings(copy.deepcopy(pooled))
    for alias, entry in filled.items():
        params = DatabaseWrapper(entry, alias).get_connection_params()
        assert params["dbname"] == entry["NAME"], where


def check_logging(config: dict[str, Any], where: str) -> None:
    """dictConfig accepts it, and no logger that existed before is disabled by it.

    In a child process: dictConfig closes every handler of the process, pytest's too.
    """
    script = textwrap.dedent(
        """
        import json, logging, logging.config, sys
        import django
        django.setup()
        before = [n for n, l in logging.root.manager.loggerDict.items()
                  if isinstance(l, logging.Logger) and not l.disabled]
        logging.config.dictConfig(json.loads(sys.stdin.read()))
        print(json.dumps([n for n in before if logging.getLogger(n).disabled]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "testproject"), str(ROOT)])},
    )
    assert result.returncode == 0, f"{where}: dictConfig failed: {result.stderr[-2000:]}"
    disabled = json.loads(result.stdout.strip().splitlines()[-1])
    assert "django.request" not in disabled and not disabled, (
        f"{where}: LOGGING disables existing loggers {disabled[:5]}: "
        'add "disable_existing_loggers": False'
    )


@blocks(lambda b: b.is_settings)
def test_settings_fragment_is_valid(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    code = compiled(block)
    if block.skip:
        return
    for name, value in re.findall(r"^#\s*([A-Z][A-Z0-9_]*)=(\S+)\s*$", block.code, re.MULTILINE):
        monkeypatch.setenv(name, value)
    namespace = project_settings()
    exec(code, namespace)
    names = assigned_names(block.code)
    assert names, f"{block.where}: a settings fragment that assigns no setting"
    source = package_source()
    for name in sorted(n for n in names if n.isupper()):
        known = hasattr(global_settings, name) or (
            name.startswith("DJANGO_SQLA_POOL_") and f'"{name}"' in source
        )
        assert known, f"{block.where}: {name} is neither a Django setting nor this package's"
    if "DATABASES" in names:
        check_databases(namespace["DATABASES"], block.where)
    if "INSTALLED_APPS" in names:
        for app in namespace["INSTALLED_APPS"]:
            if isinstance(app, str):  # [..., "django_sqla_pool"]: the reader's own apps
                assert importlib.util.find_spec(app.rsplit(".apps.", 1)[0]), (block.where, app)
    if "LOGGING" in names:
        check_logging(namespace["LOGGING"], block.where)


# -- sh ---------------------------------------------------------------------


def makefile() -> tuple[set[str], set[str]]:
    """The Makefile's targets and variables."""
    text = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.MULTILINE))
    variables = set(re.findall(r"^([A-Z_][A-Z0-9_]*)\s*[?:]?=", text, re.MULTILINE))
    variables |= set(re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", text))
    return targets, variables


def check_make(args: list[str], where: str) -> None:
    targets, variables = makefile()
    for arg in args:
        if "=" in arg:
            name = arg.split("=", 1)[0]
            assert name in variables, f"{where}: make variable {name} is not in the Makefile"
        else:
            assert arg in targets, f"{where}: make target {arg!r} is not in the Makefile"


def check_pip(args: list[str], where: str) -> None:
    assert args[:1] == ["install"], f"{where}: only `pip install` is checked: {args}"
    pyproject = (ROOT / "pyproject.toml").read_text()
    extras = set(re.findall(r"^([a-z0-9_-]+) = \[", pyproject.split("[project.optional-")[1], re.M))
    for spec in args[1:]:
        if spec.startswith("-"):
            continue
        ours = re.fullmatch(r"(django-sqla-pool|\.)(?:\[([\w,-]+)\])?", spec)
        if ours:
            for extra in filter(None, (ours[2] or "").split(",")):
                assert extra in extras, f"{where}: no extra [{extra}] in pyproject.toml"
        else:
            name = re.split(r"[\[<>=!~ ]", spec, maxsplit=1)[0]
            assert f'"{name}' in pyproject, f"{where}: {name} is not named in pyproject.toml"


def check_python_file(args: list[str], where: str) -> None:
    script = ROOT / args[0]
    assert script.is_file(), f"{where}: {args[0]} does not exist"
    text = script.read_text()
    for option in (a.split("=", 1)[0] for a in args[1:] if a.startswith("--")):
        if option == "--help" and "argparse" in text:
            continue  # argparse adds it
        assert re.search(rf"""["']{re.escape(option)}["']""", text), (
            f"{where}: {args[0]} has no option {option}"
        )


def check_manage_py(args: list[str], where: str) -> None:
    name, rest = args[0], args[1:]
    commands = get_commands()
    assert name in commands, f"{where}: no management command {name!r}"
    command = load_command_class(commands[name], name)
    command.create_parser("manage.py", name).parse_args(rest)  # CommandError if not


def run_sh_rule(words: list[str], where: str) -> None:
    """SH_RULES: how each command of an sh block is checked."""
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name = words.pop(0).split("=", 1)[0]
        assert name in package_source() or name in _project_text(), (
            f"{where}: nothing in the project reads the environment variable {name}"
        )
    if words and words[0].startswith(".venv/bin/"):
        words = [words[0].removeprefix(".venv/bin/"), *words[1:]]
    if not words:
        return
    head = words[0]
    if head == "make":
        check_make(words[1:], where)
    elif head in ("pip", "pip3"):
        check_pip(words[1:], where)
    elif head in ("python", "python3") and words[1:3] == ["-m", "pip"]:
        check_pip(words[3:], where)
    elif head == "manage.py" or (
        head in ("python", "python3") and len(words) > 1 and words[1].endswith("manage.py")
    ):
        check_manage_py(words[1:] if head == "manage.py" else words[2:], where)
    elif head in ("python", "python3") and len(words) > 1 and words[1].endswith(".py"):
        check_python_file(words[1:], where)
    elif head in ("python", "python3") and words[1:2] == ["-m"] and len(words) > 2:
        assert importlib.util.find_spec(words[2]), f"{where}: no module {words[2]!r}"
    elif head == "tox":
        check_tox(words[1:], where)
    else:
        pytest.fail(
            f"{where}: tests/test_docs.py does not know how to check `{' '.join(words)}`: "
            "add a rule to run_sh_rule(), or mark the block <!-- docs-test: skip: why -->"
        )


SH_RULES = run_sh_rule


def check_tox(args: list[str], where: str) -> None:
    assert args[:2] == ["run", "-e"] and len(args) > 2, f"{where}: only `tox run -e ENV`: {args}"
    config = configparser.ConfigParser()
    config.read(ROOT / "tox.ini")
    env_list = config["tox"]["env_list"].split()
    for env in args[2].split(","):
        assert env in env_list, f"{where}: tox env {env!r} is not in tox.ini's env_list"


def _project_text() -> str:
    parts = [ROOT / "Makefile", *sorted((ROOT / "testproject").rglob("*.py"))]
    return "\n".join(p.read_text() for p in parts)


def sh_commands(code: str) -> Iterator[list[str]]:
    joined = re.sub(r"\\\n", " ", code)
    for line in joined.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        tokens = list(lexer)
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token in ("&&", "||", ";", "|", "&"):
                if words:
                    yield words
                words = []
            elif token in (">", ">>", "<", "2>", "&>"):
                i += 1  # and its file
            else:
                words.append(token)
            i += 1
        if words:
            yield words


@blocks(lambda b: b.lang == "sh")
def test_sh_block_names_what_exists(block: Block) -> None:
    syntax = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
    assert syntax.returncode == 0, f"{block.where}: {syntax.stderr}"
    if block.skip:
        return
    commands = list(sh_commands(block.code))
    assert commands, f"{block.where}: no command"
    for words in commands:
        SH_RULES(words, block.where)


# -- console ------------------------------------------------------------------


@blocks(lambda b: b.lang == "console")
def test_console_commands_parse_and_name_urls_that_exist(block: Block) -> None:
    from django.urls import Resolver404, resolve

    commands = [line[2:] for line in block.code.splitlines() if line.startswith("$ ")]
    assert commands, f"{block.where}: a console block with no `$ ` command line"
    for command in commands:
        syntax = subprocess.run(["bash", "-n"], input=command, capture_output=True, text=True)
        assert syntax.returncode == 0, f"{block.where}: {command}: {syntax.stderr}"
        for url_path in re.findall(r"http://127\.0\.0\.1:\d+(/[^\s\"']*)", command):
            try:
                resolve(url_path)
            except Resolver404:
                pytest.fail(f"{block.where}: {url_path} is not a URL of the test project")


# -- text, json, toml, ini, yaml ---------------------------------------------------

DJANGO_OPTIONS = {
    "--version",
    "--verbosity",
    "--settings",
    "--pythonpath",
    "--traceback",
    "--no-color",
    "--force-color",
    "--skip-checks",
    "--help",
}


@blocks(lambda b: b.lang == "text" and b.code.startswith("manage.py "))
def test_usage_synopsis_lists_exactly_the_commands_options(block: Block) -> None:
    name = block.code.split()[1]
    command = load_command_class(get_commands()[name], name)
    parser = command.create_parser("manage.py", name)
    options = {s for a in parser._actions for s in a.option_strings if s.startswith("--")}
    shown = set(re.findall(r"--[a-z][a-z0-9-]*", block.code))
    assert shown <= options, f"{block.where}: not options of {name}: {shown - options}"
    assert options - DJANGO_OPTIONS <= shown, (
        f"{block.where}: options of {name} missing: {options - DJANGO_OPTIONS - shown}"
    )


def test_data_blocks_parse() -> None:
    # One test for all of them (there may be none yet): json, toml (3.11+), ini, yaml.
    for block in (b for b in ALL_BLOCKS if b.lang in ("json", "toml", "ini", "yaml")):
        try:
            if block.lang == "json":
                json.loads(block.code)
            elif block.lang == "toml" and sys.version_info >= (3, 11):
                import tomllib

                tomllib.loads(block.code)
            elif block.lang == "ini":
                configparser.ConfigParser().read_string(block.code)
            elif block.lang == "yaml":
                import yaml

                assert list(yaml.safe_load_all(block.code)), "an empty document"
        except Exception as error:
            pytest.fail(f"{block.where}: {error}")


# -- around the blocks ---------------------------------------------------------


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_readme_links_are_absolute_and_point_at_what_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", readme, re.MULTILINE)}
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert links
    for link in links:
        if link.startswith("#"):
            assert link[1:] in anchors, f"README.md: no heading for {link}"
            continue
        assert link.startswith(("https://", "http://", "mailto:")), (
            f"README.md: relative link {link!r} is broken on PyPI: use {BLOB}<path>"
            f" (or {RAW}<path> for an image)"
        )
        for prefix in (BLOB, RAW):
            if link.startswith(prefix):
                target = link[len(prefix) :].split("#")[0]
                assert (ROOT / target).exists(), f"README.md: {link} names no file"


def test_links_in_docs_point_at_files_that_exist() -> None:
    for path in DOCS[1:]:
        for link in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", path.read_text()):
            if not re.match(r"[a-z]+:", link):
                assert (path.parent / link).exists(), f"{path.name}: {link} names no file"


def test_options_table_lists_every_pool_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n### Options\n", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)
    fields = [f.name for f in dataclasses.fields(PoolSettings)]
    assert sorted(rows) == sorted(fields), (
        f"README options table {sorted(set(rows) ^ set(fields))} differ from PoolSettings"
    )


def test_benchmark_summary_counts_agree_with_the_table_of_runs() -> None:
    bench = (ROOT / "docs" / "benchmark.md").read_text()
    table = bench.split("| commit | command | sequential p50 |", 1)[1].split("\n\n", 1)[0]
    ours_total = slower = 0
    for row in table.strip().splitlines()[1:]:
        cell = row.split("|")[3].split(";")[0]
        if "(" not in cell:
            continue
        ours = [float(x) for x in re.findall(r"\d+\.\d+", cell.split("(")[0])]
        theirs = [float(x) for x in re.findall(r"\d+\.\d+", cell.split("(")[1])]
        assert len(ours) == len(theirs), row
        ours_total += len(ours)
        slower += sum(t > o for o, t in zip(ours, theirs, strict=True))
    readme = " ".join((ROOT / "README.md").read_text().split())
    claims = re.findall(r"Django's pool was slower in (\d+) of (\d+) runs", readme)
    claims += re.findall(r"Django's pool pays more in (\d+) of (\d+) runs", " ".join(bench.split()))
    assert len(claims) == 2
    for claim in claims:
        assert (int(claim[0]), int(claim[1])) == (slower, ours_total), claim


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.django_db(transaction=True)
def test_make_demo_port_serves_and_prints_that_port() -> None:
    plan = subprocess.run(
        ["make", "-n", "demo", "PORT=8731"], cwd=ROOT, capture_output=True, text=True
    )
    assert plan.returncode == 0, plan.stderr
    assert "demo_setup --port 8731" in plan.stdout
    assert "runserver 127.0.0.1:8731" in plan.stdout
    out = io.StringIO()
    call_command("demo_setup", port=8731, stdout=out)
    assert "Demo ready: http://127.0.0.1:8731/ (admin: http://127.0.0.1:8731/admin/" in (
        out.getvalue()
    )
