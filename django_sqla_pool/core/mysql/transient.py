"""Which MySQL connect failures are transient: a server restarting, full, or away.

The outage grace (``core/outage.py``) retries only these; anything else (a
wrong password, an unknown database, a bad parameter) fails at once.
"""

from __future__ import annotations

#: MySQLdb error codes (``error.args[0]``) of a server that is not there, not
#: taking connections yet (or any more), or full: 2002 cannot connect through
#: the socket, 2003 cannot connect over TCP, 2005 unknown host (name
#: resolution), 2006 server gone away, 2013 / 2055 connection lost during the
#: handshake, 1040 too many connections, 1053 server shutdown in progress,
#: 1927 connection killed, 4031 disconnected for inactivity.
TRANSIENT_CODES = frozenset({2002, 2003, 2005, 2006, 2013, 2055, 1040, 1053, 1927, 4031})


def is_transient(error: BaseException) -> bool:
    """True when this connect failure may heal by itself within seconds."""
    code = error.args[0] if getattr(error, "args", None) else None
    return isinstance(code, int) and code in TRANSIENT_CODES


def explain_refusal(error: BaseException, params: dict[str, object], where: str) -> str | None:
    # MySQL has no startup parameter a proxy could refuse; SET failures are
    # reported by session.apply_and_verify.
    return None


def is_auth_failure(error: BaseException) -> bool:
    """1045 access denied: with a rotating secret (RDS IAM), a new one may work."""
    code = error.args[0] if getattr(error, "args", None) else None
    return code == 1045
