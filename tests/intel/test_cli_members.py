from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mamori.cli import app
from mamori.intel.taxii import authenticate, list_members
from mamori.store import open_store


def test_members_add_list_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    runner = CliRunner()
    added = runner.invoke(app, ["intel", "members", "add", "bank-a", "--org", "Bank A", "--write", "shared",
                                "--rate-limit", "120", "--db", db])
    assert added.exit_code == 0, added.output
    key = added.stdout.strip().splitlines()[-1]
    assert key.startswith("mamori_")
    dup = runner.invoke(app, ["intel", "members", "add", "bank-a", "--org", "Bank A", "--db", db])
    assert dup.exit_code != 0
    listed = runner.invoke(app, ["intel", "members", "list", "--db", db])
    assert "bank-a" in listed.output and key not in listed.output
    col = runner.invoke(app, ["intel", "collections", "add", "Shared", "--alias", "shared", "--db", db])
    assert col.exit_code == 0
    assert "shared" in runner.invoke(app, ["intel", "collections", "list", "--db", db]).output
    with open_store(db) as store:
        member = authenticate(store, key)
        assert member is not None and member.may_write("x", "shared") and not member.may_write("x", "other")
        assert authenticate(store, key, "someone-else") is None
    revoked = runner.invoke(app, ["intel", "members", "revoke", "bank-a", "--db", db])
    assert revoked.exit_code == 0
    with open_store(db) as store:
        assert authenticate(store, key) is None
        assert list_members(store)[0].revoked
        actions = [e.action for e in store.audit.entries()]
        assert actions == ["member.add", "collection.create", "member.revoke"]
        assert store.audit.verify().ok
    assert runner.invoke(app, ["intel", "members", "revoke", "nobody", "--db", db]).exit_code != 0
