"""The Dockerfile: hadolint-clean, slim and pinned, non-root, dependencies cached before code,
the face libraries only in the images that analyse faces (recognizer, api)."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness.paths import ROOT

SERVICES = ("capture", "recognizer", "recorder", "api", "web")
WITH_FACES = {"recognizer", "api"}
PORTS = {"api": ["8000"], "web": ["8080"]}


def stages() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Stage name -> (what it is FROM, its (INSTRUCTION, arguments)), continuation lines joined,
    comments dropped; the global ARGs before the first FROM are under ""."""
    result: dict[str, tuple[str, list[tuple[str, str]]]] = {"": ("", [])}
    steps = result[""][1]
    for line in re.sub(r"\\\n\s*", "", (ROOT / "Dockerfile").read_text()).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, args = line.strip().split(" ", 1)
            if name == "FROM":
                base, _, alias = args.partition(" AS ")
                steps = result.setdefault(alias, (base, []))[1]
            else:
                steps.append((name, args))
    return result


def pip_installs(steps: list[tuple[str, str]]) -> list[str]:
    commands = [c.strip() for name, args in steps if name == "RUN" for c in args.split("&&")]
    return [c for c in commands if c.startswith("pip install")]


def extra_requirements(extra: str) -> set[str]:
    """The requirement names an extra brings, following self-references like attendance[recognizer]."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["optional-dependencies"][extra]:
        nested = re.fullmatch(r"attendance\[([\w,]+)\]", requirement)
        if nested:
            for inner in nested.group(1).split(","):
                names |= extra_requirements(inner)
        else:
            names.add(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower())
    return names


def test_hadolint_passes_on_the_one_dockerfile() -> None:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("no hadolint binary: install the dev extras (pip install -e '.[dev]')")
    # Run from the root so a .hadolint.yaml there (with justified ignores) would apply.
    result = subprocess.run(
        [found, "--no-color", "Dockerfile"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not list(ROOT.glob("services/*/Dockerfile")), "one Dockerfile, at the root"


def test_slim_pinned_base_non_root_user_and_the_chosen_service() -> None:
    all_stages = stages()
    assert all_stages["base"][0] == "python:3.11-slim-bookworm"
    assert "PYTHONUNBUFFERED=1" in " ".join(args for name, args in all_stages["base"][1] if name == "ENV")
    # The image is the last stage, FROM the service's own stage; no other base image.
    assert list(all_stages)[-1] == "service" and all_stages["service"][0] == "${SERVICE}"
    assert {b for b, _ in all_stages.values()} - {*all_stages, "${SERVICE}"} == {"python:3.11-slim-bookworm"}
    steps = all_stages["service"][1]
    assert ("ARG", "SERVICE") in steps and ("ARG", "EXTRAS=${SERVICE}") in steps
    assert [step for step in steps if step[0] == "USER"][-1] == ("USER", "10001:10001"), "not root"
    assert ("STOPSIGNAL", "SIGTERM") in steps
    assert not {"ENTRYPOINT", "CMD", "EXPOSE"} & {name for name, _ in steps}, "set per service"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_stage(service: str) -> None:
    base, steps = stages()[service]
    assert base == ("faces" if service in WITH_FACES else "base")
    assert steps[-1] == ("ENTRYPOINT", f'["python", "-m", "services.{service}"]')
    assert [args for name, args in steps if name == "EXPOSE"] == PORTS.get(service, [])
    assert not pip_installs(steps), "packages go in faces or the last stage"


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    # constraints.txt alone before the face libraries, pyproject.toml before the extra, the code
    # last (anything copied after it would rebuild on every edit), nothing in the service stages.
    copies = [(name, a) for name, (_, steps) in stages().items() for n, a in steps if n == "COPY"]
    assert copies == [
        ("base", "constraints.txt ./"),
        ("service", "pyproject.toml ./"),
        ("service", "db/migrations/ db/migrations/"),
        ("service", "services/ services/"),
    ]
    steps = stages()["service"][1]
    assert [name for name, _ in steps if name in ("COPY", "RUN")] == ["COPY", "RUN", "COPY", "COPY"]
    assert pip_installs(steps) == ['pip install --no-cache-dir -c constraints.txt ".[${EXTRAS}]"']


def test_pinned_installs_and_the_face_libraries_only_where_faces_are_analysed() -> None:
    installs = {name: pip_installs(steps) for name, (_, steps) in stages().items()}
    assert all("-c constraints.txt" in c and "--no-cache-dir" in c for cs in installs.values() for c in cs)
    runs = [args for _, steps in stages().values() for name, args in steps if name == "RUN"]
    assert all("--no-install-recommends" in run for run in runs if "apt-get install" in run)
    face_libraries = {"dlib-bin", "face-recognition-models", "setuptools"}
    # face_recognition_models imports pkg_resources: setuptools must stay below 81 there.
    assert installs["faces"] == [
        'pip install --no-cache-dir -c constraints.txt dlib-bin face-recognition-models "setuptools<81"',
        "pip install --no-cache-dir -c constraints.txt --no-deps face-recognition",
    ]
    for service in SERVICES:
        expected = face_libraries if service in WITH_FACES else set()
        assert face_libraries & extra_requirements(service) == expected, service


def test_pinned_versions_cover_the_images_packages() -> None:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in lines if "==" in line}
    for service in SERVICES:
        wanted = {name.replace("_", "-") for name in extra_requirements(service)} - {"setuptools"}
        assert wanted <= pinned, f"{service}: not pinned in constraints.txt: {sorted(wanted - pinned)}"
    assert "face-recognition" in pinned
