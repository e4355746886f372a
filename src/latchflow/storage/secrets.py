"""Secrets at rest: encrypted (Fernet) or hashed (tokens), and redacted from anything shown or logged.

The key comes from ``LATCHFLOW_SECRET_KEY`` (comma list: the first encrypts, all decrypt, so keys
rotate with MultiFernet) or from ``secret.key`` in the data directory, created 0600 on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from latchflow.plugin.errors import ConfigurationError

KEY_ENV = "LATCHFLOW_SECRET_KEY"
REDACTED = "***"
SECRET_NAME = re.compile(
    r"secret|password|passwd|token|authorization|api[_-]?key|private|pem", re.I
)


class Sealer:
    """Encrypts and decrypts JSON values with the configured keys."""

    def __init__(self, keys: list[bytes]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except ValueError as exc:
            raise ConfigurationError(
                "must be 32 url-safe base64-encoded bytes (make one with"
                " `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)",
                path=KEY_ENV,
            ) from exc

    @classmethod
    def from_environment(cls, data_dir: Path) -> Sealer:
        configured = os.environ.get(KEY_ENV, "").strip()
        if configured:
            return cls([k.strip().encode() for k in configured.split(",") if k.strip()])
        key_file = data_dir / "secret.key"
        if not key_file.exists():
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        return cls([key_file.read_bytes().strip()])

    def seal(self, value: Any) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def unseal(self, token: str) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ConfigurationError(
                "cannot decrypt stored secrets with the configured key; set the key they were"
                " written with (old keys may follow the new one, comma separated)",
                path=KEY_ENV,
            ) from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt a sealed value with the first (newest) key."""
        return self._fernet.rotate(token.encode()).decode()


def token_hash(token: str) -> str:
    """What is stored of an API key or a URL token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def secret_fields(schema: dict[str, Any]) -> set[str]:
    """Top-level properties of a connection schema marked ``writeOnly``."""
    return {
        n
        for n, p in schema.get("properties", {}).items()
        if isinstance(p, dict) and p.get("writeOnly")
    }


def redact(value: Any, secrets: set[str] | frozenset[str] = frozenset()) -> Any:
    """A copy of a JSON value with secret-named fields and known secret values masked."""
    if isinstance(value, dict):
        return {
            k: REDACTED
            if SECRET_NAME.search(str(k)) and v not in (None, "")
            else redact(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str) and value:
        for secret in secrets:
            if len(secret) >= 4 and secret in value:
                value = value.replace(secret, REDACTED)
    return value


def at_paths(value: Any, paths: tuple[str, ...]) -> list[Any]:
    """The values at dotted ``paths`` in a JSON value (a list on the way applies to each item)."""
    found: list[Any] = []
    for path in paths:
        nodes = [value]
        for part in path.split("."):
            nodes = [n[part] for n in _items(nodes) if isinstance(n, dict) and part in n]
        found += [n for n in _items(nodes) if n not in (None, "")]
    return found


def mask_paths(value: Any, paths: tuple[str, ...]) -> Any:
    """A copy of a JSON value with what is at dotted ``paths`` masked."""
    for path in paths:
        value = _mask(value, path.split("."))
    return value


def _items(nodes: list[Any]) -> list[Any]:
    return [item for n in nodes for item in (n if isinstance(n, list) else [n])]


def _mask(value: Any, parts: list[str]) -> Any:
    if isinstance(value, list):
        return [_mask(item, parts) for item in value]
    if not isinstance(value, dict) or parts[0] not in value:
        return value
    head, rest = parts[0], parts[1:]
    inner = value[head]
    masked = (REDACTED if inner not in (None, "") else inner) if not rest else _mask(inner, rest)
    return {**value, head: masked}
