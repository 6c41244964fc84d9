"""Run the scoring app with uvicorn."""

from __future__ import annotations

import gc
import logging

import uvicorn
from fastapi import FastAPI

__all__ = ["serve"]

logger = logging.getLogger(__name__)


def serve(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8080, log_level: str = "warning",
          certfile: str | None = None, keyfile: str | None = None) -> None:
    """Serve until interrupted.

    Parameters
    ----------
    app : fastapi.FastAPI
        From :func:`create_app`.
    host : str, default="127.0.0.1"
        Interface.
    port : int, default=8080
        TCP port.
    log_level : str, default="warning"
        uvicorn's log level.
    certfile, keyfile : str or None, default=None
        TLS certificate and key (PEM).
    """
    logger.info("scoring API on %s:%d", host, port)
    # Latency, not memory, is what a scoring API is judged on: the model, the feature state and the imported
    # libraries are long-lived, so move them out of the collector's view and collect the young generation
    # less often (full collections over a large heap were the tail of the single-event latency).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, ssl_certfile=certfile,
                ssl_keyfile=keyfile)
