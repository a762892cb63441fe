""".dockerignore keeps the build context to what the images need: never the virtualenv, test
artifacts, .env or recorded data."""

import re

import pytest

from harness.paths import ROOT


def rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception "!", pattern) per line, in file order."""
    parsed = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        parsed.append((negate, _compile(line.removeprefix("!").strip("/"))))
    return parsed


def _compile(pattern: str) -> re.Pattern[str]:
    """Docker's matching: Go's filepath.Match per path element, plus ** for any number of them."""
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            regex, i = regex + "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]", end + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.compile(regex + "$")


def excluded(path: str) -> bool:
    """Like the Docker builder: the last rule matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for negate, pattern in rules():
        if any(pattern.match(candidate) for candidate in candidates):
            result = not negate
    return result


@pytest.mark.parametrize(
    "path",
    [
        ".venv",
        ".venv/bin/python",
        "artifacts",
        "artifacts/logs/recorder.log",
        "var/attendance.csv",
        ".env",
        ".git/HEAD",
        "tests/unit/deploy/test_dockerignore.py",
        ".pytest_cache/v/cache",
        "media/lesson.mp4",
        "services/web/__pycache__/app.cpython-311.pyc",
        "Dockerfile",
        "docker-compose.yml",
    ],
)
def test_left_out_of_the_build_context(path: str) -> None:
    assert excluded(path)


@pytest.mark.parametrize(
    "path",
    ["pyproject.toml", "constraints.txt", "services/api/app.py", "services/web/templates/base.html"],
)
def test_what_the_images_copy_is_in_the_context(path: str) -> None:
    assert not excluded(path)


def test_the_venv_and_artifacts_are_named_explicitly() -> None:
    lines = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", "artifacts", ".env"} <= lines
