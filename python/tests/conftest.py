import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

pytest_plugins = ["devwire_sim.pytest_plugin"]


import pytest  # noqa: E402

from headless_chromium import Browser, find_chromium  # noqa: E402


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session (scripts/install-deps.sh
    installs it). Without it the browser tests are skipped, except in CI,
    where a missing browser fails them."""
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: scripts/install-deps.sh installs it")
        pytest.skip("chromium is not installed (scripts/install-deps.sh installs it)")
    b = Browser(executable)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def page(browser):
    """A tab of its own (fresh cookies and storage), closed after the test."""
    p = browser.page()
    try:
        yield p
    finally:
        p.close()
