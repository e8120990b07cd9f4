"""Long remote waits say what they wait for: the clients tell the policy's ``on_wait`` hook, and
on a terminal the CLI shows a spinner with it (issue 11, item 14)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext

import pytest

from integrations.errors import RemoteUnavailable
from integrations.http import RetryPolicy
from integrations.procore import ProcoreClient
from sandbox.server import SandboxServer
from tests.conftest import Relink, Sandbox
from tests.terminal_support import in_terminal, plain, script_env

COMPANY = 4021


class Told:
    """An ``on_wait`` hook that keeps what it was told."""

    def __init__(self) -> None:
        self.waits: list[tuple[str, float]] = []

    def __call__(self, what: str, seconds: float) -> AbstractContextManager[object]:
        self.waits.append((what, seconds))
        return nullcontext()


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """What a wait shows does not depend on the database; SQLite is enough."""
    return sqlite_url


@pytest.fixture(name="limited")
def fixture_limited() -> Iterator[SandboxServer]:
    """A sandbox whose Procore allows 3 calls in a 3-second window."""
    with SandboxServer(rate_limit=(3, 3.0)) as server:
        yield server


def faulty(sandbox: Sandbox, kind: str) -> None:
    """Every later API call of the sandbox fails with ``kind``."""
    sandbox.control("POST", "faults", {"rate": 1.0, "kinds": [kind], "seed": 1})


def test_a_retry_after_wait_is_told(sandbox: Sandbox) -> None:
    """A 503 with Retry-After: the hook hears what is waited for and for how long."""
    faulty(sandbox, "503")
    told = Told()
    policy = RetryPolicy(attempts=2, on_wait=told)
    with ProcoreClient(sandbox.url, "sandbox-ana", COMPANY, policy=policy) as procore, \
            pytest.raises(RemoteUnavailable):
        procore.me()
    assert [what for what, _ in told.waits] == [
        "Procore asked to come back later (HTTP 503, per Retry-After)"]
    assert 0.5 < told.waits[0][1] <= 1.0


def test_a_429_wait_names_the_limit_and_the_header(sandbox: Sandbox) -> None:
    """A 429: the wait names Procore's limit in its own words and the header that set it."""
    faulty(sandbox, "429")
    told = Told()
    with ProcoreClient(sandbox.url, "sandbox-ana", COMPANY,
                       policy=RetryPolicy(attempts=2, on_wait=told)) as procore, \
            pytest.raises(RemoteUnavailable):
        procore.me()
    (what, seconds), = told.waits
    assert what.startswith("Procore's rate limit is used up")
    assert what.endswith("HTTP 429 (per Retry-After)")
    assert seconds > 0


def test_a_backoff_wait_is_told_and_slept_through_the_policy(sandbox: Sandbox) -> None:
    """A 500 on a read: the backoff before the next try is told, then slept by the policy's
    own sleep (no wait after the last try)."""
    faulty(sandbox, "500")
    told, slept = Told(), []
    policy = RetryPolicy(attempts=3, backoff_initial=0.25, backoff_max=5, backoff_jitter=0,
                         on_wait=told, sleep=slept.append)
    with ProcoreClient(sandbox.url, "sandbox-ana", COMPANY, policy=policy) as procore, \
            pytest.raises(RemoteUnavailable, match="after 3 attempts"):
        procore.me()
    assert slept == [0.25, 0.5]
    assert [seconds for _, seconds in told.waits] == slept
    assert told.waits[0][0].startswith("Procore: HTTP 500, try 2 of 3 next (GET /rest/v1.0/me")
    assert told.waits[1][0].startswith("Procore: HTTP 500, try 3 of 3 next")


def test_a_rate_limit_reset_wait_is_told(limited: SandboxServer) -> None:
    """Calls beyond Procore's window: the pacer waits for the reset and says which limit."""
    told = Told()
    with ProcoreClient(limited.url, "sandbox-ana", COMPANY,
                       policy=RetryPolicy(on_wait=told)) as procore:
        for _ in range(5):
            procore.me()
    said = [what for what, _ in told.waits]
    assert "Procore's rate limit of 3 calls is used up (X-Rate-Limit-Remaining: 0)" in said
    assert all(seconds > 0 for _, seconds in told.waits)


def test_the_cli_shows_a_spinner_on_a_terminal(relink: Relink, sandbox: Sandbox) -> None:
    """On a terminal, `relink whoami` against a Procore answering 503 shows what it waits for
    on a spinner, then the one-line error; the spinner is gone from the final screen."""
    faulty(sandbox, "503")
    code, shown = in_terminal(["whoami"], {**script_env(relink),
                                           "RELINK_HTTP_MAX_ATTEMPTS": "2"})
    assert code == 3, shown
    text = plain(shown)
    assert "Waiting 1 s: Procore asked to come back later (HTTP 503, per Retry-After)" in text
    last = text.rstrip().splitlines()[-1]
    assert last.startswith("Error: Procore unavailable: HTTP 503 after 2 attempts (GET /rest/")


def test_piped_output_shows_no_spinner(relink: Relink, sandbox: Sandbox) -> None:
    """Piped, a wait only takes time: stderr holds the error line alone."""
    faulty(sandbox, "503")
    outcome = relink("whoami", RELINK_HTTP_MAX_ATTEMPTS="2")
    assert outcome.exit_code == 3
    (line,) = outcome.stderr.strip().splitlines()
    assert line.startswith("Error: Procore unavailable: HTTP 503 after 2 attempts (GET /rest/")


def test_the_spinner_names_the_wait_and_keeps_quiet_under_another() -> None:
    """The spinner says what is waited for; a wait too short to notice shows nothing, and so
    does any wait while another spinner (the wait for the operator's click) holds the terminal."""
    import io

    from rich.console import Console

    from commands.waiting import Spinner, muted

    def shown(wait: float, *, under_another: bool = False) -> str:
        screen = io.StringIO()
        spinner = Spinner(Console(file=screen, force_terminal=True, width=100))
        with muted() if under_another else nullcontext(), spinner(
            "Procore's rate limit of 3 calls is used up (X-Rate-Limit-Remaining: 0)", wait
        ):
            pass
        return screen.getvalue()

    assert ("Waiting 3 s: Procore's rate limit of 3 calls is used up"
            " (X-Rate-Limit-Remaining: 0)") in shown(2.5)
    assert shown(0.2) == ""
    assert shown(2.5, under_another=True) == ""
