"""A real, offline browser for the tests: Debian's chromium driven by Playwright's sync API.

Playwright cannot download its own browser here, so it launches the system chromium through
``executable_path``. Every request the page makes is recorded, and every one that is not local
(``file:``, ``data:``, or the test server on ``http://127.0.0.1:PORT/``) is aborted, so a page that
tries to reach a CDN fails its test instead of quietly working on a connected machine. Console
errors and uncaught page errors are collected for the tests to assert on, and screenshots are kept
under ``$SEETHROUGH_TEST_ARTIFACTS`` (default ``<repo>/test-artifacts/``) for a person to look at.

Usage::

    from _browser import offline_page, require_chromium

    require_chromium()              # skips (or fails under CI) with the reason when there is none
    with offline_page(port=port) as browser:
        browser.page.goto(f"http://127.0.0.1:{port}/")
        ...
        browser.screenshot("explorer-count")
        assert browser.console_errors == []
        assert browser.blocked == []
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent

# Chromium resolves Google hosts in the background even with Playwright's flags (measured in
# /work/shared/research/explorer_report.md §1.2); map every name to NOTFOUND except loopback.
_QUIET_FLAGS = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def chromium_executable() -> str | None:
    """The system chromium to drive (``chromium``, else ``chromium-browser`` on PATH), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_required() -> bool:
    """True where a missing browser must fail the tests rather than skip them (CI, or asked for)."""
    return bool(os.environ.get("CI")) or os.environ.get("SEETHROUGH_REQUIRE_BROWSER", "") not in ("", "0")


def require_chromium() -> str:
    """The chromium path; otherwise skip the calling test with the reason (fail instead under CI)."""
    import pytest

    exe = chromium_executable()
    reason = None
    if exe is None:
        reason = "no chromium on PATH (install it: apt-get install chromium, or scripts/setup.sh --test)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[test]')"
    if reason is not None:
        if browser_required():
            pytest.fail(f"browser tests must run here but cannot: {reason}")
        pytest.skip(reason)
    return exe


def artifacts_dir() -> Path:
    """Where screenshots go: $SEETHROUGH_TEST_ARTIFACTS, else <repo>/test-artifacts/ (gitignored)."""
    folder = Path(os.environ.get("SEETHROUGH_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class OfflinePage:
    """One browser page with what it did: ``requests`` (every URL asked for, in order), ``blocked``
    (the non-local ones, aborted), ``console_errors`` (console messages of type error, then
    ``pageerror: ...`` for uncaught exceptions)."""

    page: object  # playwright.sync_api.Page
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        """Save a PNG of the page as ``<artifacts>/<name>.png`` and return its path."""
        path = artifacts_dir() / (name if name.endswith(".png") else f"{name}.png")
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def _is_local(url: str, port: int | None) -> bool:
    if url.startswith(("file://", "data:", "about:", "blob:")):
        return True
    return port is not None and url.startswith(f"http://127.0.0.1:{port}/")


@contextmanager
def offline_page(port: int | None = None, viewport: tuple[int, int] = (1280, 900),
                 timeout_ms: int = 15_000) -> Iterator[OfflinePage]:
    """Launch chromium headless and yield an :class:`OfflinePage`; only ``file:``/``data:`` URLs and,
    with ``port``, ``http://127.0.0.1:PORT/`` are let through. Call :func:`require_chromium` first."""
    from playwright.sync_api import sync_playwright

    exe = chromium_executable()
    if exe is None:
        raise RuntimeError("no chromium on PATH; call require_chromium() first")
    args = list(_QUIET_FLAGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # chromium refuses to start as root with its sandbox on
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=args)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                          service_workers="block")
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            result = OfflinePage(page=page)

            def route(route_, request):
                result.requests.append(request.url)
                if _is_local(request.url, port):
                    route_.continue_()
                else:
                    result.blocked.append(request.url)
                    route_.abort()

            context.route("**/*", route)
            page.on("console", lambda msg: msg.type == "error" and result.console_errors.append(msg.text))
            page.on("pageerror", lambda err: result.console_errors.append(f"pageerror: {err}"))
            yield result
            context.close()
        finally:
            browser.close()
