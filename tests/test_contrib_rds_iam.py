"""RDS/Aurora IAM tokens (contrib/rds_iam.py): what is signed, for which endpoint, in the pool.

boto3 signs a token locally: with credentials from the environment (fake
ones here) nothing reaches AWS. The end-to-end test runs the pool against a
throwaway cluster (port 25458) whose role gets each token as its password,
since no PostgreSQL outside RDS checks an IAM signature.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from django_sqla_pool import PoolConnectError, pool_stats
from django_sqla_pool.conf import parse_pool_settings
from django_sqla_pool.core import registry

from .aliases import extra_aliases
from .throwaway import Cluster

pytest.importorskip("boto3")

from django_sqla_pool.contrib import rds_iam

PORT = 25458
ENDPOINT = "db1.abc123xyz.eu-west-1.rds.amazonaws.com"


@pytest.fixture(autouse=True)
def _fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials from the environment only: no profile, no file, no metadata endpoint."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(rds_iam, "_default", rds_iam._AuthToken())  # no client from another test


@pytest.fixture
def aliases() -> Iterator[Any]:
    yield from extra_aliases()


@pytest.fixture
def _unblocked(django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():  # servers of their own, no test data
        yield


def query_string(token: str) -> dict[str, str]:
    endpoint, _, query = token.partition("/?")
    return {"endpoint": endpoint, **dict(urllib.parse.parse_qsl(query))}


def test_auth_token_signs_for_the_alias_host_port_and_user(
    aliases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    aliases("iam", HOST=ENDPOINT, PORT="5433", USER="app_user")
    before = time.time()
    answer = rds_iam.auth_token("iam")
    signed = query_string(answer["password"])
    assert signed["endpoint"] == f"{ENDPOINT}:5433"
    assert signed["Action"] == "connect"
    assert signed["DBUser"] == "app_user"
    assert signed["X-Amz-Expires"] == "900"
    assert signed["X-Amz-Credential"].split("/")[2:4] == ["eu-west-1", "rds-db"]
    # The pool reuses it until shortly before this, well within the 900 s RDS accepts it.
    lifetime = rds_iam.TOKEN_LIFETIME - rds_iam.CLOCK_MARGIN
    assert before + lifetime <= answer["expires_at"] <= time.time() + lifetime
    assert "user" not in answer  # USER is already right


def test_the_region_comes_from_aws_region_then_boto3s_default(
    aliases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    aliases("iam", HOST=ENDPOINT, PORT="5432", USER="app_user")

    def region() -> str:
        credential = query_string(rds_iam.auth_token("iam")["password"])["X-Amz-Credential"]
        return credential.split("/")[2]

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    assert region() == "us-east-2"
    monkeypatch.setenv("AWS_REGION", "ap-southeast-1")
    assert region() == "ap-southeast-1"


def test_provider_settings_win_over_databases_and_the_environment(
    aliases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    aliases("iam", HOST="127.0.0.1", PORT="6432", USER="app_user")  # a tunnel, say
    provider = rds_iam.provider(region="eu-central-1", host=ENDPOINT, port=5432, user="reporting")
    answer = provider("iam")
    signed = query_string(answer["password"])
    assert signed["endpoint"] == f"{ENDPOINT}:5432"
    assert signed["DBUser"] == "reporting"
    assert signed["X-Amz-Credential"].split("/")[2] == "eu-central-1"
    assert answer["user"] == "reporting"  # the pool connects as the user the token is for
    assert repr(provider) == (
        f"rds_iam.provider(region='eu-central-1', host='{ENDPOINT}', port=5432, user='reporting')"
    )


def test_the_dotted_path_is_accepted_as_the_credentials_option() -> None:
    path = "django_sqla_pool.contrib.rds_iam.auth_token"
    settings_dict = {"OPTIONS": {"credentials": path}}
    assert parse_pool_settings("iam", settings_dict).credentials is rds_iam.auth_token


def test_without_boto3_the_setting_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 raises ImportError
    monkeypatch.delitem(sys.modules, "django_sqla_pool.contrib.rds_iam")
    settings_dict = {"OPTIONS": {"credentials": "django_sqla_pool.contrib.rds_iam.auth_token"}}
    with pytest.raises(ImproperlyConfigured, match=re.escape("django-sqla-pool[rds-iam]")):
        parse_pool_settings("iam", settings_dict)


@pytest.mark.usefixtures("_unblocked")
@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ({"HOST": f"{ENDPOINT},db2.example.com", "PORT": "5432"}, "several endpoints"),
        ({"HOST": ENDPOINT, "PORT": "5432,5433"}, "several endpoints"),
        ({"HOST": "", "PORT": ""}, "one TCP endpoint"),
        ({"HOST": "/var/run/postgresql", "PORT": ""}, "one TCP endpoint"),
    ],
)
def test_an_endpoint_a_token_cannot_be_signed_for_fails_the_connect_with_the_reason(
    aliases: Any, monkeypatch: pytest.MonkeyPatch, keys: dict[str, str], says: str
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    aliases("iam", {"credentials": rds_iam.auth_token, "connect_grace": 0}, USER="app", **keys)
    started = time.monotonic()
    with pytest.raises(PoolConnectError) as caught:
        connections["iam"].ensure_connection()
    message = str(caught.value)
    assert "'iam'" in message and "rds_iam.auth_token" in message and says in message
    assert time.monotonic() - started < 5  # refused at once, not retried


def test_no_region_anywhere_names_the_settings_to_set(aliases: Any) -> None:
    aliases("iam", HOST=ENDPOINT, PORT="5432", USER="app")
    with pytest.raises(ValueError, match="set AWS_REGION"):
        rds_iam.auth_token("iam")


def test_a_credentials_source_that_fails_is_reported_transient(
    aliases: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A credential_process that fails: what boto3 raises when a credentials source it was
    # told to use cannot answer right now (the container endpoint, an SSO helper).
    config = tmp_path / "config"
    config.write_text("[default]\ncredential_process = /bin/false\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    aliases("iam", HOST=ENDPOINT, PORT="5432", USER="app")
    with pytest.raises(rds_iam.TokenUnavailable) as caught:
        rds_iam.auth_token("iam")
    assert caught.value.transient is True
    assert "CredentialRetrievalError" in str(caught.value)


# -- End to end ----------------------------------------------------------------


@pytest.fixture(scope="module")
def iam_cluster() -> Iterator[Cluster]:
    with Cluster(PORT) as cluster:
        cluster.start(password="not-a-token")
        yield cluster


@pytest.mark.usefixtures("_unblocked")
def test_the_pool_connects_with_the_token_and_signs_once_for_a_burst(
    iam_cluster: Cluster, aliases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    signed: list[str] = []

    def accepting_the_token(alias: str) -> dict[str, Any]:
        """auth_token(), then the server made to accept its token (RDS checks the signature)."""
        answer = rds_iam.auth_token(alias)
        iam_cluster.execute(f"ALTER ROLE postgres PASSWORD '{answer['password']}'")
        signed.append(answer["password"])
        return answer

    entry = iam_cluster.settings_dict(
        connections["default"].settings_dict, credentials=accepting_the_token, pool_size=6
    )
    entry["PASSWORD"] = ""
    aliases("iam", entry["OPTIONS"], **{k: v for k, v in entry.items() if k != "OPTIONS"})
    barrier = threading.Barrier(6)
    users: list[Any] = []

    def connect() -> None:
        try:
            barrier.wait(10)
            with connections["iam"].cursor() as cursor:
                cursor.execute("SELECT current_user")
                users.append(cursor.fetchone()[0])
                barrier.wait(10)  # all six open at once: six physical connects
        except Exception as error:
            users.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=connect) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert users == ["postgres"] * 6
    [stats] = pool_stats("iam")["pools"]
    assert stats["counters"]["connections_opened"] == 6
    assert len(signed) == 1 and stats["credentials"]["calls"] == 1
    assert signed[0].startswith(f"127.0.0.1:{PORT}/?Action=connect&DBUser=postgres&")
    assert len(registry.pools("iam")) == 1
