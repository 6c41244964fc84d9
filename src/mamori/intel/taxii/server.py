"""Run the TAXII server with uvicorn."""

from __future__ import annotations

import logging

from mamori.intel.taxii.app import create_app
from mamori.intel.taxii.config import TaxiiConfig
from mamori.intel.taxii.ingest import start_validation_pool, warm_up
from mamori.store import Store

__all__ = ["serve"]

logger = logging.getLogger(__name__)


def serve(store: Store, config: TaxiiConfig | None = None, *, host: str = "127.0.0.1", port: int = 8021,
          certfile: str | None = None, keyfile: str | None = None, log_level: str = "warning") -> None:
    """Serve TAXII 2.1 until interrupted.

    Parameters
    ----------
    store : Store
        The open store.
    config : TaxiiConfig or None, default=None
        Server settings.
    host : str, default="127.0.0.1"
        Interface to bind.
    port : int, default=8021
        TCP port.
    certfile, keyfile : str or None, default=None
        TLS certificate and key (PEM); plain HTTP when None (use TLS in production).
    log_level : str, default="warning"
        uvicorn log level.
    """
    import uvicorn

    config = config or TaxiiConfig()
    warm_up(config)  # validators loaded now, not in the first add request
    start_validation_pool(config)  # large envelopes are validated on every core
    app = create_app(store, config)
    logger.info("TAXII server on %s:%d (store %s)", host, port, store.url)
    uvicorn.run(app, host=host, port=port, log_level=log_level, ssl_certfile=certfile, ssl_keyfile=keyfile,
                access_log=False)
