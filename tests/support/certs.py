"""Throw-away certificates for TLS tests: a CA, a server certificate for 127.0.0.1/localhost, a client one.

Made with the ``openssl`` command (Debian package ``openssl``, installed on first use as
root), valid for two days; nothing here is a secret worth keeping.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.apt import ensure_binary

__all__ = ["PKI", "make_pki"]


@dataclass(frozen=True)
class PKI:
    ca: Path            # the CA certificate (PEM): what a client trusts
    server_cert: Path   # server certificate, SAN DNS:localhost, IP:127.0.0.1
    server_key: Path
    client_cert: Path   # a client certificate signed by the same CA
    client_key: Path
    other_ca: Path      # an unrelated CA: trusting it must fail


def _run(*args: str, cwd: Path) -> None:
    subprocess.run([ensure_binary("openssl", "openssl"), *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return key, cert


def _signed(directory: Path, name: str, ca_key: Path, ca_cert: Path, extensions: str) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    _run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}",
         cwd=directory)
    _run("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
         "-out", str(cert), "-days", "2", "-extfile", str(ext), cwd=directory)
    return key, cert


def make_pki(directory: Path) -> PKI:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca(directory, "test-ca")
    _, other = _ca(directory, "other-ca")
    server_key, server_cert = _signed(directory, "server", ca_key, ca_cert,
                                      "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                      "extendedKeyUsage=serverAuth\n")
    client_key, client_cert = _signed(directory, "client", ca_key, ca_cert, "extendedKeyUsage=clientAuth\n")
    return PKI(ca_cert, server_cert, server_key, client_cert, client_key, other)
