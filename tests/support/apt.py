"""Find a Debian-packaged program, installing it with apt when the tests run as root.

Tests and CI run as root on Debian with the package archive reachable, so a test that
needs a real external program installs it on first use: ``apt-get update`` once per
process, then ``apt-get install -y --no-install-recommends PACKAGE``. Anyone else gets
an error that says which package to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

__all__ = ["ensure_binary", "MissingProgramError"]

_lock = threading.Lock()
_apt_updated = False

# Wait for another apt/dpkg run (e.g. a parallel test process) instead of failing at once.
_APT_OPTS = ["-o", "DPkg::Lock::Timeout=300", "-o", "Acquire::Retries=3"]
_APT_TIMEOUT_S = 900


class MissingProgramError(RuntimeError):
    """A program a test needs is not installed and cannot be installed from here."""


def _run_apt(args: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(["apt-get", *_APT_OPTS, *args], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=_APT_TIMEOUT_S)
    if proc.returncode != 0:
        raise MissingProgramError(f"`apt-get {' '.join(args)}` failed (exit {proc.returncode}):\n"
                                  + proc.stdout[-4000:])


def ensure_binary(binary: str, package: str, *, path: str | None = None) -> str:
    """Return the path of ``binary``; install Debian ``package`` first if it is missing.

    ``path`` is where the package puts the program (checked before ``$PATH``).
    Installing needs root and ``apt-get``; otherwise :class:`MissingProgramError`.
    """
    global _apt_updated

    def find() -> str | None:
        if path and os.access(path, os.X_OK):
            return path
        return shutil.which(binary)

    found = find()
    if found:
        return found
    with _lock:
        found = find()
        if found:
            return found
        how = f"install it with `apt-get install -y --no-install-recommends {package}` (Debian package {package!r})"
        if os.geteuid() != 0:
            raise MissingProgramError(f"{binary!r} is not installed and this process is not root: {how}")
        if shutil.which("apt-get") is None:
            raise MissingProgramError(f"{binary!r} is not installed and apt-get is not available: {how}")
        if not _apt_updated:
            _run_apt(["update"])
            _apt_updated = True
        _run_apt(["install", "-y", "--no-install-recommends", package])
        found = find()
        if not found:
            raise MissingProgramError(f"installed Debian package {package!r} but {binary!r} is still not found")
        return found
