import subprocess
import sys

from harness.paths import ROOT


def test_the_readme_configuration_table_matches_the_settings_classes() -> None:
    generated = subprocess.run(
        [sys.executable, "scripts/settings_table.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- settings-table:start -->") + len("<!-- settings-table:start -->")
    end = readme.index("<!-- settings-table:end -->")
    assert readme[start:end].strip() == generated, "run `python scripts/settings_table.py --write`"


def test_every_setting_in_the_table_has_an_explanation() -> None:
    rows = (
        (ROOT / "README.md").read_text().split("<!-- settings-table:start -->")[1].split("<!-- settings")[0]
    )
    empty = [line for line in rows.strip().splitlines()[2:] if line.rstrip().endswith("|  |")]
    assert empty == []
