"""A real S3-compatible server on 127.0.0.1 (moto's server mode), for tests through s3fs."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from _oracles import require_module

# fake credentials: moto accepts any unless its authentication is switched on
KEY, SECRET = "testing-key", "testing-secret"


@dataclass
class S3:
    """A running moto server: its endpoint and the storage_options that reach it."""

    endpoint: str

    def options(self, key: str = KEY, secret: str = SECRET) -> dict[str, Any]:
        """storage_options for s3fs (one attempt: a refused request fails at once)."""
        return {
            "key": key,
            "secret": secret,
            "endpoint_url": self.endpoint,
            "config_kwargs": {"retries": {"max_attempts": 1}},
        }

    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, **self.options())

    def bucket(self) -> str:
        """A new empty bucket."""
        name = "b-" + secrets.token_hex(4)
        self.fs().mkdir(name)
        return name


@contextlib.contextmanager
def moto_server() -> Iterator[S3]:
    """Start moto's ThreadedMotoServer on a free port of 127.0.0.1; stopped on exit."""
    require_module("s3fs")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server_mod = require_module("moto.server", "pip install 'moto[server]'")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3(f"http://{host}:{port}")
    finally:
        server.stop()
