"""``mamori node``: run a member's Flower SuperNode with mamori's ClientApp, pull models, push sightings."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer
from rich.console import Console

from mamori.cli.app import app
from mamori.deploy import MemberSync, load_node_config, start_node, stop_process

console = Console()


@app.command("node")
def node_command(
    config: Path = typer.Option(Path("node.toml"), "--config", help="node.toml"),
    restart: bool = typer.Option(True, help="Restart the SuperNode if it exits (rejoin after failures)."),
) -> None:
    """Start the SuperNode; pull published global models and push sightings until stopped (Ctrl-C / SIGTERM)."""
    cfg = load_node_config(config)
    sync = MemberSync(cfg)
    log = cfg.model_dir.parent / f"supernode-{cfg.name}.log"
    stopping = {"flag": False}

    def _stop(*_: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    proc = start_node(cfg, log)
    console.print(f"SuperNode {cfg.name} -> {cfg.superlink} (pid {proc.pid}, {cfg.isolation} isolation, log {log})")
    if cfg.registry_url:
        console.print(f"pulling {cfg.model_name} from {cfg.registry_url} into {cfg.resolved_local_store_url}")
    if cfg.taxii_url:
        console.print(f"pushing sightings of {cfg.alerts_path} to {cfg.taxii_url} ({cfg.sightings_collection})")
    try:
        while not stopping["flag"]:
            if proc.poll() is not None:
                if not restart:
                    break
                console.print(f"SuperNode exited with code {proc.returncode}; restarting in 5 s")
                time.sleep(5)
                proc = start_node(cfg, log)
            pulled = len(sync.pulled)
            sync.tick()
            for got in sync.pulled[pulled:]:
                console.print(f"new global model v{got.version} ({got.sha256[:12]}) installed")
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop_process(proc)
