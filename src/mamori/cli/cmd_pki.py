"""``mamori pki``: the consortium CA, the coordinator's certificate and members' node keys."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mamori.cli.app import app
from mamori.deploy import (
    PKIPaths,
    init_ca,
    issue_node_key,
    issue_server_cert,
    list_members,
    register_node_key,
    revoke_node,
)
from mamori.errors import ConfigError

pki_app = typer.Typer(help="Consortium PKI: CA, coordinator TLS certificate, node keys.", no_args_is_help=True)
app.add_typer(pki_app, name="pki")
console = Console()

DIR_OPTION = typer.Option(Path("pki"), "--dir", help="The PKI directory (coordinator side).")


@pki_app.command("init")
def init_command(
    directory: Path = DIR_OPTION,
    host: list[str] = typer.Option(["127.0.0.1", "localhost"], "--host", help="Coordinator host names / IPs (SANs)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing CA (every member needs the new ca.crt)."),
) -> None:
    """Create the consortium CA and the coordinator's TLS certificate."""
    init_ca(directory, overwrite=force)
    issue_server_cert(directory, hosts=tuple(host))
    console.print(f"CA and coordinator certificate in [bold]{directory}[/] (hand ca.crt to every member)")


@pki_app.command("issue")
def issue_command(
    directory: Path = DIR_OPTION,
    node: str | None = typer.Option(None, "--node", help="Make a node key pair for this member name."),
    out: Path = typer.Option(Path("."), "--out", help="Where the node key pair goes (run this at the member)."),
    register: bool = typer.Option(True, help="Also register the new public key in --dir (coordinator side)."),
    server: bool = typer.Option(False, "--server", help="(Re)issue the coordinator's TLS certificate (rotation)."),
    host: list[str] = typer.Option(["127.0.0.1", "localhost"], "--host", help="SANs for --server."),
    public_key: Path | None = typer.Option(
        None, "--public-key", help="Register this member .pub instead of making one."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing node key pair (rotation)."),
) -> None:
    """Issue a node key pair (or register a member's .pub), or rotate the coordinator certificate."""
    if server:
        issue_server_cert(directory, hosts=tuple(host))
        console.print("coordinator certificate reissued; restart the coordinator to use it")
    if node is None:
        return
    handed_in = public_key is not None
    if public_key is None:
        private, public_key = issue_node_key(out, node, overwrite=force)
        console.print(f"node key pair: [bold]{private}[/] (keep at the member) and {public_key}")
    if register or handed_in:
        entry = register_node_key(directory, node, public_key)
        console.print(f"registered {entry.name} {entry.fingerprint}")


@pki_app.command("revoke")
def revoke_command(
    node: str = typer.Argument(..., help="Member name."),
    directory: Path = DIR_OPTION,
) -> None:
    """Revoke a member's node key (the coordinator unregisters it at its next sync)."""
    entry = revoke_node(directory, node)
    console.print(f"revoked {entry.name} {entry.fingerprint}")


@pki_app.command("list")
def list_command(directory: Path = DIR_OPTION) -> None:
    """List the registered members."""
    paths = PKIPaths(directory)
    if not (paths.ca_key.exists() or paths.members.exists()):  # a mistyped --dir is not an empty consortium
        raise ConfigError(f"pki list: no consortium PKI in {directory} (no ca.key, no members.json); check --dir "
                          f"or run `mamori pki init --dir {directory}` first.")
    table = Table("name", "status", "fingerprint", "registered", "revoked")
    for m in list_members(directory):
        table.add_row(m.name, m.status, m.fingerprint[:23] + "...", m.registered_at[:19], (m.revoked_at or "")[:19])
    console.print(table)
