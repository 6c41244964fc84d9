"""``mamori node``: run a member's Flower SuperNode with mamori's ClientApp."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer
from rich.console import Console

from mamori.cli.app import app
from mamori.deploy import load_node_config, start_node, stop_process

console = Console()


@app.command("node")
def node_command(
    config: Path = typer.Option(Path("node.toml"), "--config", help="node.toml"),
    restart: bool = typer.Option(True, help="Restart the SuperNode if it exits (rejoin after failures)."),
) -> None:
    """Start the SuperNode and keep it running until stopped (Ctrl-C / SIGTERM)."""
    cfg = load_node_config(config)
    log = cfg.model_dir.parent / f"supernode-{cfg.name}.log"
    stopping = {"flag": False}

    def _stop(*_: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    proc = start_node(cfg, log)
    console.print(f"SuperNode {cfg.name} -> {cfg.superlink} (pid {proc.pid}, log {log})")
    try:
        while not stopping["flag"]:
            if proc.poll() is not None:
                if not restart:
                    break
                console.print(f"SuperNode exited with code {proc.returncode}; restarting in 5 s")
                time.sleep(5)
                proc = start_node(cfg, log)
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        stop_process(proc)
