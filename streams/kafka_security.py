"""How every client connects to Kafka: the security settings, checked once, translated once.

The settings (group "kafka", see :mod:`streams.config`): ``security_protocol``
(PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), ``sasl_mechanism`` (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512), ``sasl_username``, ``sasl_password`` or ``sasl_password_file``,
``ssl_cafile``, ``ssl_certfile``, ``ssl_keyfile`` and ``ssl_check_hostname``.

Every place that talks to Kafka takes its options from here, so the worker (Faust and its
changelog reader), ``glasscity topics``, ``simulate``, ``dlq replay``, the demo's alert
reader and the benchmarks connect the same way:

* :func:`kafka_python_security` — keyword arguments for kafka-python's
  ``KafkaAdminClient``, ``KafkaProducer`` and ``KafkaConsumer``;
* :func:`aiokafka_security` — keyword arguments for aiokafka's consumer and producer;
* :func:`faust_credentials` — ``broker_credentials`` for :class:`faust.App`
  (``faust.SASLCredentials`` carries the SCRAM mechanisms to aiokafka as well as PLAIN);
* :func:`security_environment` — the ``GLASSCITY_*`` variables that make a child process
  connect as this one does (the demo's and the tests' worker subprocesses);
* :func:`security_problems` — the cross-field checks :class:`~streams.config.Settings`
  runs when it is built.

TLS is one :class:`ssl.SSLContext` (:func:`ssl_context`) given to every client alike:
the CA file (else the system's trust store), the client certificate and key if set, and
host name checking unless ``ssl_check_hostname`` is off. Verification of the broker's
certificate is never switched off.

The password is read from ``sasl_password`` or, at each client's creation, from
``sasl_password_file`` (a container secret). It never appears in a ``repr``, a log line or
an error message; error messages name the setting and the file, never the content.
"""

from __future__ import annotations

import logging
import os
import ssl
from typing import TYPE_CHECKING

from streams.config import SETTING_FIELDS, env_name, flag_name

if TYPE_CHECKING:  # pragma: no cover
    from streams.config import Settings

__all__ = ["SECURITY_SETTINGS", "PROTOCOLS", "SASL_MECHANISMS", "kafka_python_security", "aiokafka_security",
           "faust_credentials", "ssl_context", "sasl_password", "security_environment", "security_problems",
           "uses_sasl", "uses_tls"]

log = logging.getLogger(__name__)

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: The settings this module reads: they travel together (flags, child environments).
SECURITY_SETTINGS = ("security_protocol", "sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file",
                     "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")
_SASL_ONLY = ("sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file")
_TLS_ONLY = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")

_warned_plain_text = False


def _named(name: str) -> str:
    f = SETTING_FIELDS[name]
    return f"{flag_name(f)} / {env_name(f)}"


def uses_sasl(settings: "Settings") -> bool:
    return settings.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def uses_tls(settings: "Settings") -> bool:
    return settings.security_protocol in ("SSL", "SASL_SSL")


def _read_password_file(path: str) -> tuple[str | None, str | None]:
    """(password, None) or (None, problem); the problem names the file, never its content."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        return None, f"cannot read {path}: {reason}"
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        return None, f"{path} is empty"
    if "\n" in password or "\r" in password:
        return None, f"{path} holds more than one line"
    return password, None


def security_problems(settings: "Settings") -> list[str]:
    """Everything wrong with the combination of security settings (empty list: usable)."""
    problems = []
    protocol = settings.security_protocol
    if uses_sasl(settings):
        if not settings.sasl_mechanism:
            problems.append(f"{_named('sasl_mechanism')} is required with {protocol} "
                            f"(one of {', '.join(SASL_MECHANISMS)})")
        if not settings.sasl_username:
            problems.append(f"{_named('sasl_username')} is required with {protocol}")
        if settings.sasl_password and settings.sasl_password_file:
            problems.append(f"set the SASL password once: {_named('sasl_password')} or "
                            f"{_named('sasl_password_file')}, not both")
        elif not settings.sasl_password and not settings.sasl_password_file:
            problems.append(f"a SASL password is required with {protocol}: set {_named('sasl_password_file')} "
                            f"(or {_named('sasl_password')})")
        elif settings.sasl_password_file:
            _, problem = _read_password_file(settings.sasl_password_file)
            if problem:
                problems.append(f"{_named('sasl_password_file')}: {problem}")
    else:
        given = [name for name in _SASL_ONLY if getattr(settings, name)]
        if given:
            problems.append(f"{', '.join(_named(name) for name in given)} set, but {_named('security_protocol')} "
                            f"is {protocol}, so no SASL authentication would happen (use SASL_SSL or "
                            f"SASL_PLAINTEXT, or unset them)")
    if uses_tls(settings):
        for name in _TLS_ONLY:
            path = getattr(settings, name)
            if path and not os.path.isfile(path):
                problems.append(f"{_named(name)}: no such file {path}")
            elif path and not os.access(path, os.R_OK):
                problems.append(f"{_named(name)}: {path} is not readable")
        if settings.ssl_keyfile and not settings.ssl_certfile:
            problems.append(f"{_named('ssl_keyfile')} needs {_named('ssl_certfile')} (the certificate it belongs to)")
    else:
        given = [name for name in _TLS_ONLY if getattr(settings, name)]
        if given:
            problems.append(f"{', '.join(_named(name) for name in given)} set, but {_named('security_protocol')} "
                            f"is {protocol}, so no TLS would be used (use SSL or SASL_SSL, or unset them)")
    return problems


def sasl_password(settings: "Settings") -> str:
    """The SASL password: the setting, else the file's one line (read now, so a rotated secret is seen)."""
    if settings.sasl_password:
        return settings.sasl_password
    from streams.config import SettingsError

    password, problem = _read_password_file(settings.sasl_password_file)
    if problem:
        raise SettingsError(f"{_named('sasl_password_file')}: {problem}")
    return password


def ssl_context(settings: "Settings") -> ssl.SSLContext:
    """The TLS context every client uses: verifies the broker's certificate, always."""
    from streams.config import SettingsError

    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.ssl_cafile or None)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None)
    except (OSError, ssl.SSLError) as error:
        # the messages of ssl name the failing step, never key material
        raise SettingsError(f"TLS settings ({_named('ssl_cafile')}, {_named('ssl_certfile')}, "
                            f"{_named('ssl_keyfile')}) cannot be used: {error}") from None
    context.check_hostname = bool(settings.ssl_check_hostname)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _warn_plain_text(settings: "Settings") -> None:
    global _warned_plain_text
    if settings.security_protocol == "SASL_PLAINTEXT" and settings.sasl_mechanism == "PLAIN" \
            and not _warned_plain_text:
        _warned_plain_text = True
        log.warning("SASL PLAIN over SASL_PLAINTEXT sends the password unencrypted; use SASL_SSL, or a "
                    "SCRAM mechanism, outside a closed network")


def kafka_python_security(settings: "Settings") -> dict:
    """Keyword arguments for kafka-python clients (admin, producer, consumer)."""
    options: dict = {"security_protocol": settings.security_protocol}
    if uses_sasl(settings):
        _warn_plain_text(settings)
        options.update(sasl_mechanism=settings.sasl_mechanism, sasl_plain_username=settings.sasl_username,
                       sasl_plain_password=sasl_password(settings))
    if uses_tls(settings):
        options["ssl_context"] = ssl_context(settings)
    return options


def aiokafka_security(settings: "Settings") -> dict:
    """Keyword arguments for aiokafka clients (the worker's changelog reader, benchmarks)."""
    # aiokafka takes the same names as kafka-python for everything set here
    return kafka_python_security(settings)


def faust_credentials(settings: "Settings"):
    """``broker_credentials`` for :class:`faust.App`: None (PLAINTEXT), SSLCredentials or SASLCredentials.

    faust-streaming hands these to aiokafka for its consumer and producer; its
    SASLCredentials takes the mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and, with an
    SSL context, becomes SASL_SSL.
    """
    import faust

    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    _warn_plain_text(settings)
    return faust.SASLCredentials(username=settings.sasl_username, password=sasl_password(settings),
                                 mechanism=settings.sasl_mechanism,
                                 ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None)


def security_environment(settings: "Settings") -> dict[str, str]:
    """``GLASSCITY_*`` variables that make a child process connect exactly as ``settings`` do.

    Every security variable is set (empty when unset), so the parent's own environment cannot
    leak other credentials into the child. A password given directly travels in the child's
    environment, never on its command line; a password file travels as its path.
    """
    env = {}
    for name in SECURITY_SETTINGS:
        value = getattr(settings, name)
        env[env_name(SETTING_FIELDS[name])] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return env
