"""The README's configuration table, generated from the settings classes (names, defaults,
which services read each) and the comments of `.env.example` (what each costs and buys).

    python scripts/settings_table.py           # print the table
    python scripts/settings_table.py --write   # replace it in README.md

A unit test fails when README.md and this output disagree.
"""

import re
import sys
from pathlib import Path

from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.api.settings import ApiSettings  # noqa: E402
from services.capture.settings import CaptureSettings  # noqa: E402
from services.recognizer.settings import RecognizerSettings  # noqa: E402
from services.recorder.settings import RecorderSettings  # noqa: E402
from services.web.settings import WebSettings  # noqa: E402

SERVICES: dict[str, type[BaseSettings]] = {
    "capture": CaptureSettings,
    "recognizer": RecognizerSettings,
    "recorder": RecorderSettings,
    "api": ApiSettings,
    "web": WebSettings,
}
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
GENERATED_DEFAULT = "(random per process)"


def env_comments() -> dict[str, str]:
    """For each `# NAME=default` or `NAME=` line of .env.example, the comment block above it
    (settings listed one after another share the block)."""
    comments: dict[str, str] = {}
    block: list[str] = []
    in_block = False
    for line in (ROOT / ".env.example").read_text().splitlines():
        setting = re.match(r"^#?\s?([A-Z][A-Z0-9_]+)=", line)
        if setting:
            comments[setting.group(1)] = " ".join(block)
            in_block = False
        elif line.startswith("# ") and not line.startswith("# ==="):
            block = [*block, line[2:].strip()] if in_block else [line[2:].strip()]
            in_block = True
        else:
            block, in_block = [], False
    return comments


def default_of(settings: type[BaseSettings], name: str) -> str:
    field = settings.model_fields[name]
    if field.default_factory is not None:
        return GENERATED_DEFAULT if "secret" in name else "(computed)"
    value = field.default
    if hasattr(value, "get_secret_value"):
        return GENERATED_DEFAULT
    return "(unset)" if value is None else str(value)


def table() -> str:
    readers: dict[str, list[str]] = {}
    defaults: dict[str, str] = {}
    for service, settings in SERVICES.items():
        for name in settings.model_fields:
            readers.setdefault(name, []).append(service)
            defaults.setdefault(name, default_of(settings, name))
    comments = env_comments()
    lines = ["| setting | default | read by | what it does |", "| --- | --- | --- | --- |"]
    for name in sorted(readers, key=lambda n: (len(readers[n]) < len(SERVICES), n)):
        who = "all" if len(readers[name]) == len(SERVICES) else ", ".join(readers[name])
        meaning = comments.get(name.upper(), "").replace("|", "\\|")
        lines.append(f"| `{name.upper()}` | `{defaults[name]}` | {who} | {meaning} |")
    return "\n".join(lines)


def main() -> None:
    generated = table()
    if "--write" not in sys.argv:
        sys.stdout.write(generated + "\n")
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(START) + len(START), text.index(END)
    readme.write_text(text[:start] + "\n" + generated + "\n" + text[end:])


if __name__ == "__main__":
    main()
