"""``mamori intel``: run the TAXII server, manage members and collections, push/pull/list intelligence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mamori.cli.app import app, option_errors
from mamori.errors import IntelError
from mamori.store import DEFAULT_URL, open_store

intel_app = typer.Typer(help="Shared threat intelligence: TAXII server, members, push/pull.", no_args_is_help=True)
members_app = typer.Typer(help="Consortium members of the TAXII server (API keys, access).", no_args_is_help=True)
collections_app = typer.Typer(help="TAXII collections.", no_args_is_help=True)
intel_app.add_typer(members_app, name="members")
intel_app.add_typer(collections_app, name="collections")
app.add_typer(intel_app, name="intel")

DB_OPTION = typer.Option(DEFAULT_URL, "--db", envvar="MAMORI_DB",
                         help="Database URL (sqlite:///file.db, postgresql://user@host/db) or SQLite file path.")
URL_OPTION = typer.Option("http://127.0.0.1:8021/taxii2/", "--url", envvar="MAMORI_TAXII_URL",
                          help="Discovery URL of the TAXII server.")
MEMBER_OPTION = typer.Option(..., "--member", envvar="MAMORI_TAXII_MEMBER", help="Your member name.")
KEY_OPTION = typer.Option(..., "--key", envvar="MAMORI_TAXII_KEY", help="Your API key (better: $MAMORI_TAXII_KEY).")


@intel_app.command("serve")
def serve_command(
    db: str = DB_OPTION,
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8021, help="TCP port."),
    api_root: str = typer.Option("mamori", help="Name of the API root."),
    validation: str = typer.Option("full", help="'full' (stix2 + stix2-validator) or 'library' (stix2 only)."),
    max_content_length: int = typer.Option(10 * 1024 * 1024, help="Largest request body in bytes."),
    certfile: str | None = typer.Option(None, help="TLS certificate (PEM)."),
    keyfile: str | None = typer.Option(None, help="TLS private key (PEM)."),
) -> None:
    """Serve TAXII 2.1 from the store until interrupted."""
    from mamori.intel.taxii import TaxiiConfig, serve

    try:
        config = TaxiiConfig(api_root=api_root, validation=validation,  # type: ignore[arg-type]
                             max_content_length=max_content_length)
    except ValueError as exc:
        raise IntelError(f"intel serve: invalid option: {option_errors(exc)}") from exc
    store = open_store(db)
    Console(stderr=True).print(f"TAXII 2.1 on http://{host}:{port}/taxii2/ (store {store.url})")
    serve(store, config, host=host, port=port, certfile=certfile, keyfile=keyfile)


@members_app.command("add")
def members_add(
    name: str = typer.Argument(..., help="Member login name."),
    org: str = typer.Option(..., "--org", help="Organisation (TLP:AMBER+STRICT stays inside it)."),
    read: Annotated[list[str] | None, typer.Option("--read", help="Collection id/alias readable (default '*' = "
                                                   "all); repeatable.")] = None,
    write: Annotated[list[str] | None, typer.Option("--write", help="Collection id/alias writable.")] = None,
    rate_limit: int = typer.Option(600, "--rate-limit", help="Requests per minute (0 = unlimited)."),
    admin: bool = typer.Option(False, "--admin", help="May read every status and delete any object."),
    db: str = DB_OPTION,
) -> None:
    """Add a member and print its API key (shown only this once)."""
    from mamori.intel.taxii import add_member

    with open_store(db) as store:
        member, key = add_member(store, name, org, read=read or ["*"], write=write or [], rate_limit=rate_limit,
                                 admin=admin)
    Console(stderr=True).print(f"member [bold]{member.name}[/] ({member.organization}) added; its API key "
                               "(store it now, it is not shown again):")
    typer.echo(key)


@members_app.command("list")
def members_list(db: str = DB_OPTION) -> None:
    """List members (never their keys)."""
    from mamori.intel.taxii import list_members

    with open_store(db, must_exist=True) as store:
        members = list_members(store)
    table = Table("name", "organization", "read", "write", "rate/min", "admin", "revoked", "added")
    for m in members:
        table.add_row(m.name, m.organization, ",".join(m.can_read), ",".join(m.can_write), str(m.rate_limit),
                      "yes" if m.admin else "", "REVOKED" if m.revoked else "", m.created_at)
    Console().print(table)


@members_app.command("revoke")
def members_revoke(name: str = typer.Argument(..., help="Member name."), db: str = DB_OPTION) -> None:
    """Revoke a member's API key."""
    from mamori.intel.taxii import revoke_member

    with open_store(db, must_exist=True) as store:
        revoke_member(store, name)
    Console().print(f"member {name} revoked")


@collections_app.command("add")
def collections_add(
    title: str = typer.Argument(..., help="Collection title."),
    alias: str | None = typer.Option(None, help="Short unique name."),
    description: str = typer.Option("", help="Description."),
    api_root: str = typer.Option("mamori", help="API root."),
    db: str = DB_OPTION,
) -> None:
    """Create a collection and print its id."""
    from mamori.intel.taxii import create_collection

    with open_store(db) as store:
        col = create_collection(store, title, alias=alias, description=description, api_root=api_root)
    typer.echo(col.id)


@collections_app.command("list")
def collections_list(db: str = DB_OPTION) -> None:
    """List the collections in the store."""
    from mamori.intel.taxii import list_collections

    with open_store(db, must_exist=True) as store:
        cols = list_collections(store)
    table = Table("id", "alias", "title", "api root")
    for c in cols:
        table.add_row(c.id, c.alias or "", c.title, c.api_root)
    Console().print(table)


def _load_objects(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IntelError(f"intel push: cannot read {path} as JSON: {exc}") from exc
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(data.get("objects"), list):
        return list(data["objects"])  # a STIX bundle or a TAXII envelope
    if isinstance(data, dict) and "type" in data:
        return [data]
    raise IntelError(f"intel push: {path} holds neither a STIX bundle, a TAXII envelope, a list nor one object")


@intel_app.command("push")
def push_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="STIX bundle / envelope / list (JSON).")],
    collection: str = typer.Option(..., "--collection", "-c", help="Collection id or alias."),
    url: str = URL_OPTION,
    member: str = MEMBER_OPTION,
    key: str = KEY_OPTION,
    no_dedup: bool = typer.Option(False, "--no-dedup", help="Send as is (no new versions, no sighting merge)."),
) -> None:
    """Publish STIX objects to a collection (re-published objects become new versions)."""
    from mamori.intel import TaxiiClient

    objects = _load_objects(file)
    result = TaxiiClient(url, member, key).push(collection, objects, deduplicate=not no_dedup)
    Console().print(f"sent {result.sent} objects ({result.new_versions} new versions, {result.unchanged} unchanged) "
                    f"in {len(result.status_ids)} envelopes")


@intel_app.command("pull")
def pull_command(
    collection: str = typer.Option(..., "--collection", "-c", help="Collection id or alias."),
    url: str = URL_OPTION,
    member: str = MEMBER_OPTION,
    key: str = KEY_OPTION,
    added_after: str | None = typer.Option(None, help="Only objects added after this RFC 3339 time."),
    type_: Annotated[list[str] | None, typer.Option("--type", help="Only these STIX types; repeatable.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write a STIX bundle here (default: stdout).")] = None,
) -> None:
    """Fetch every readable object of a collection as one STIX bundle."""
    import uuid

    from mamori.intel import TaxiiClient

    match = {"type": type_} if type_ else {}
    objects = list(TaxiiClient(url, member, key).pull(collection, added_after=added_after, **match))
    bundle = json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}, indent=1)
    if out is None:
        typer.echo(bundle)
    else:
        out.write_text(bundle, encoding="utf-8")
        Console(stderr=True).print(f"{len(objects)} objects written to {out}")


@intel_app.command("list")
def list_command(url: str = URL_OPTION, member: str = MEMBER_OPTION, key: str = KEY_OPTION) -> None:
    """List the collections this member can see on a TAXII server."""
    from mamori.intel import TaxiiClient

    table = Table("id", "alias", "title", "read", "write")
    for c in TaxiiClient(url, member, key).collections():
        table.add_row(c["id"], c["alias"] or "", c["title"], str(c["can_read"]), str(c["can_write"]))
    Console().print(table)
