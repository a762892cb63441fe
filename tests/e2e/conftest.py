"""The end-to-end tier drives the real dashboard too: Chromium fixtures from tests.support.browser."""

from tests.support.browser import browser, page  # noqa: F401
