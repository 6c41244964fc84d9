"""The coordinator's HTTP services (TAXII 2.1, model registry, dashboard) and its run schedule.

:class:`Coordinator` is what ``mamori coordinator start`` runs: the Flower SuperLink as a child process,
the three HTTP services as uvicorn servers in threads of the coordinator process (each on its own
configured host and port), the member-key sync, the refusal audit and the schedule of federated runs.
:meth:`Coordinator.stop` ends all of them.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mamori.deploy.config import ConsortiumConfig
from mamori.deploy.runtime import (
    RunOutcome,
    audit_refusals,
    run_federated,
    start_superlink,
    stop_flwr_clients,
    stop_process,
    sync_members,
    wait_for_port,
)
from mamori.errors import FederationError

__all__ = ["Coordinator", "HttpService", "Schedule"]

logger = logging.getLogger(__name__)


class HttpService:
    """An ASGI app served by uvicorn in a daemon thread, stoppable from the outside.

    Parameters
    ----------
    name : str
        For logs and errors (``"taxii"``, ``"registry"``, ``"dashboard"``).
    app : ASGI app
        What to serve.
    host : str
        Interface.
    port : int
        TCP port.
    """

    def __init__(self, name: str, app: Any, host: str, port: int) -> None:
        import uvicorn

        self.name = name
        self.host = host
        self.port = port
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                     access_log=False, lifespan="on"))
        self._thread = threading.Thread(target=self._run, name=f"mamori-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self._server.run()
        except SystemExit:  # uvicorn exits when it cannot bind; start() reports it
            logger.error("%s service on %s:%d could not start", self.name, self.host, self.port)

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        """Start serving and wait until the port accepts connections.

        Parameters
        ----------
        timeout_s : float, default=30.0
            How long to wait.

        Raises
        ------
        FederationError
            If the server does not listen in time (port taken, bad host).
        """
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise FederationError(f"coordinator: the {self.name} service did not start on {self.host}:{self.port} "
                                      "(port in use? see the log above); change its port in consortium.toml.")
            time.sleep(0.05)
        wait_for_port(self.host, self.port, timeout_s)
        logger.info("%s on %s", self.name, self.url)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)


@dataclass
class Schedule:
    """When the next scheduled federated run is due (``[schedule] interval_minutes``; 0 = never).

    Parameters
    ----------
    interval_s : float
        Seconds between the end of one run and the start of the next; 0 disables the schedule.
    clock : callable, default=time.monotonic
        Time source (injectable for tests).
    """

    interval_s: float
    clock: Callable[[], float] = time.monotonic
    next_due: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.next_due = self.clock() + self.interval_s if self.interval_s > 0 else None

    def due(self) -> bool:
        """Whether a run should start now."""
        return self.next_due is not None and self.clock() >= self.next_due

    def done(self) -> None:
        """A run ended: the next is due one interval from now."""
        if self.interval_s > 0:
            self.next_due = self.clock() + self.interval_s


class Coordinator:
    """The consortium coordinator: SuperLink, TAXII server, model registry API, dashboard and schedule.

    Parameters
    ----------
    cfg : ConsortiumConfig
        The consortium configuration.
    """

    def __init__(self, cfg: ConsortiumConfig) -> None:
        self.cfg = cfg
        self.superlink: subprocess.Popen[bytes] | None = None
        self.services: list[HttpService] = []
        self.schedule = Schedule(cfg.schedule.interval_minutes * 60.0)
        self.runs: list[RunOutcome] = []
        self._store: Any = None
        self._audit: Any = None
        self._last_scan = 0.0
        self._runner: threading.Thread | None = None

    def _ensure_collections(self) -> None:
        from mamori.intel.taxii import create_collection, list_collections

        have = {c.alias for c in list_collections(self._store, self.cfg.taxii.api_root)}
        for alias in self.cfg.taxii.collections:
            if alias not in have:
                create_collection(self._store, alias.capitalize(), alias=alias, api_root=self.cfg.taxii.api_root,
                                  description=f"Consortium {alias} (created by mamori coordinator)")

    def start(self, dashboard: Callable[[Any], Any] | None = None) -> None:
        """Start the SuperLink and the enabled HTTP services, and register the members' keys.

        Parameters
        ----------
        dashboard : callable or None, default=None
            Builds the dashboard app from the open store (the CLI passes ``mamori.web``'s factory: the
            dashboard is an edge of the package graph, so ``deploy`` does not import it); None = no dashboard.

        Raises
        ------
        FederationError
            If the SuperLink or a service does not start (everything started so far is stopped again).
        """
        from mamori.store import AuditLog, open_store

        try:
            self._store = open_store(self.cfg.resolved_store_url)
            self._audit = AuditLog(self._store)
            self.superlink = start_superlink(self.cfg)
            c = self.cfg
            if c.taxii.enabled:
                from mamori.intel.taxii import TaxiiConfig, create_app

                self._ensure_collections()
                self.services.append(HttpService("taxii", create_app(self._store, TaxiiConfig(
                    api_root=c.taxii.api_root)), c.taxii.host, c.taxii.port))
            if c.registry.enabled:
                from mamori.deploy.registry_api import create_registry_app

                self.services.append(HttpService("registry", create_registry_app(self._store), c.registry.host,
                                                 c.registry.port))
            if c.dashboard.enabled and dashboard is not None:
                self.services.append(HttpService("dashboard", dashboard(self._store), c.dashboard.host,
                                                 c.dashboard.port))
            for s in self.services:
                s.start()
            sync_members(self.cfg, self._audit)
        except BaseException:
            self.stop()
            raise

    def _scheduled_run(self) -> None:
        try:
            outcome = run_federated(self.cfg, more_rounds=self.cfg.federation.num_rounds)
        except Exception:  # noqa: BLE001 - a failed run must not end the schedule
            logger.exception("scheduled run failed")
            self.schedule.done()
            return
        self.runs.append(outcome)
        if self._audit is not None:
            self._audit.append("coordinator", "federation.scheduled_run", f"model:{self.cfg.federation.model_name}",
                               {"returncode": outcome.returncode, "rounds_before": outcome.rounds_before,
                                "rounds_after": outcome.rounds_after, "seconds": round(outcome.seconds, 1)})
        logger.info("scheduled run: code %d, rounds %d -> %d, %.1f s", outcome.returncode, outcome.rounds_before,
                    outcome.rounds_after, outcome.seconds)
        self.schedule.done()

    def tick(self) -> bool:
        """One pass of the main loop: audit refused SuperNodes, start a scheduled run when due.

        A scheduled run goes on in a background thread (so the loop stays responsive to a stop); the next is
        due one interval after it ended.

        Returns
        -------
        bool
            True when this call started a scheduled run.
        """
        started = False
        running = self._runner is not None and self._runner.is_alive()
        if not running and self.schedule.due():
            self.schedule.next_due = None  # until this run ends
            self._runner = threading.Thread(target=self._scheduled_run, name="mamori-scheduled-run", daemon=True)
            self._runner.start()
            started = True
        if time.monotonic() - self._last_scan > 5:
            audit_refusals(self.cfg, self._audit)
            self._last_scan = time.monotonic()
        return started

    @property
    def alive(self) -> bool:
        """Whether the SuperLink is still running."""
        return self.superlink is not None and self.superlink.poll() is None

    def stop(self) -> None:
        """Stop the services and the SuperLink (and its descendants), close the store."""
        for s in reversed(self.services):
            s.stop()
        self.services.clear()
        if self.superlink is not None:
            stop_process(self.superlink)
            self.superlink = None
        # a scheduled run's `flwr run` client loses its SuperLink; end it rather than leave it behind
        stop_flwr_clients()
        if self._runner is not None:
            self._runner.join(timeout=10)
        if self._store is not None:
            self._store.close()
            self._store = None
