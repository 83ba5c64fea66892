"""Pseudonymisation at the door: personal identifiers become keyed hashes.

A meter id identifies a household, so it is replaced by HMAC-SHA-256(key, kind ||
id), truncated to 128 bits, before it becomes a state key or leaves the worker in
an alert. The same key gives the same pseudonym (state and alerts stay joinable
across restarts); without the key the id cannot be recovered or guessed by
hashing candidate ids. The key is a secret (``GLASSCITY_PSEUDONYM_KEY``).
"""

from __future__ import annotations

import hmac

__all__ = ["Pseudonymizer", "PSEUDONYM_BITS"]

#: Bits of the HMAC kept in a pseudonym (the design floor is 128).
PSEUDONYM_BITS = 128


class Pseudonymizer:
    """Maps raw identifiers to stable pseudonyms such as ``wm-3f2a...`` (32 hex digits)."""

    def __init__(self, key: bytes):
        if not isinstance(key, bytes) or len(key) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes (128 bits) of secret")
        self._key = key

    def __repr__(self) -> str:
        return "Pseudonymizer(key=<secret>)"

    def pseudonym(self, kind: str, raw_id: str) -> str:
        digest = hmac.digest(self._key, f"{kind}\x00{raw_id}".encode("utf-8"), "sha256")
        return f"{kind}-{digest[:PSEUDONYM_BITS // 8].hex()}"

    def many(self, kind: str, raw_ids: list[str]) -> list[str]:
        """Pseudonyms of many ids of one kind, in order."""
        key, prefix, tag = self._key, kind + "-", kind.encode() + b"\x00"
        size = PSEUDONYM_BITS // 8
        return [prefix + hmac.digest(key, tag + raw.encode("utf-8"), "sha256")[:size].hex() for raw in raw_ids]

    def meter(self, raw_id: str) -> str:
        return self.pseudonym("wm", raw_id)
