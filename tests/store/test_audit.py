from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from mamori.cli import app
from mamori.errors import StoreError
from mamori.store import GENESIS_HASH, Store, StoreConfig, open_store
from mamori.store.tables import AuditRow


def _fill(store: Store, n: int = 5) -> None:
    for i in range(n):
        store.audit.append(f"member:bank-{i}", "taxii.add", f"collection:{i}", {"count": i, "ids": ["a", "b"]})


def test_append_links_each_row_to_the_previous(store: Store) -> None:
    _fill(store, 3)
    entries = store.audit.entries()
    assert [e.id for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash
    assert entries[2].details == {"count": 2, "ids": ["a", "b"]}
    assert store.audit.verify().ok


def test_verify_finds_an_edited_row(store: Store) -> None:
    _fill(store)
    with store.write() as s:
        s.execute(update(AuditRow).where(AuditRow.id == 3).values(actor="member:mallory"))
    report = store.audit.verify()
    assert not report.ok
    assert report.first_bad_id == 3
    assert "edited" in report.reason


def test_verify_finds_a_removed_row(store: Store) -> None:
    _fill(store)
    with store.write() as s:
        s.execute(delete(AuditRow).where(AuditRow.id == 2))
    report = store.audit.verify()
    assert (report.ok, report.first_bad_id) == (False, 3)


def test_verify_finds_a_rehashed_row(store: Store) -> None:
    # an attacker who recomputes the row's own hash still breaks the link of the next row
    _fill(store)
    from mamori.store.audit import row_hash

    with store.write() as s:
        row = s.get(AuditRow, 2)
        assert row is not None
        row.details = '{"count":99}'
        row.hash = row_hash(row.id, row.at, row.actor, row.action, row.subject, row.details, row.prev_hash)
    report = store.audit.verify()
    assert (report.ok, report.first_bad_id) == (False, 3)


def test_concurrent_appends_keep_one_chain(store: Store) -> None:
    def work() -> None:
        for _ in range(10):
            store.audit.append("t", "a", "s")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = store.audit.verify()
    assert report.ok and report.rows_checked == 40


def test_append_inside_a_failed_transaction_is_rolled_back(store: Store) -> None:
    import pytest

    from mamori.errors import StoreError

    with pytest.raises(StoreError), store.write() as s:
        store.audit.append("t", "a", "s", session=s)
        s.add(AuditRow(id=1, at="", actor="", action="", subject="", details="", prev_hash="", hash="x"))
        s.flush()
    assert store.audit.count() == 0


def test_cli_audit_verify(store_config: StoreConfig, store: Store) -> None:
    runner = CliRunner()
    _fill(store)
    db = store_config.url
    if store_config.schema_name:  # the CLI takes a URL; point libpq at the test schema
        db = f"{db}?options=-csearch_path%3D{store_config.schema_name}"
    ok = runner.invoke(app, ["audit", "verify", "--db", db])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    with store.write() as s:
        s.execute(update(AuditRow).where(AuditRow.id == 4).values(subject="collection:other"))
    bad = runner.invoke(app, ["audit", "verify", "--db", db])
    assert bad.exit_code == 1
    assert "row 4" in bad.output
    shown = runner.invoke(app, ["audit", "show", "--db", db, "-n", "2"])
    assert shown.exit_code == 0 and "taxii.add" in shown.output


@pytest.mark.parametrize("command", [["audit", "verify"], ["audit", "show"], ["privacy", "ledger"],
                                     ["intel", "members", "list"], ["intel", "collections", "list"]],
                         ids=" ".join)
def test_commands_that_read_a_store_refuse_a_missing_sqlite_file(tmp_path: Path, command: list[str]) -> None:
    # `mamori audit verify --db <typo>` created an empty database (and its folders) and reported the audit log intact
    missing = tmp_path / "typo" / "mamori.db"
    result = CliRunner().invoke(app, [*command, "--db", f"sqlite:///{missing}"])
    assert result.exit_code != 0
    assert isinstance(result.exception, StoreError)
    assert f"no database at '{missing}'" in str(result.exception)
    assert not missing.parent.exists()  # nothing created


def test_open_store_creates_a_missing_sqlite_file_unless_it_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "new" / "mamori.db"
    with pytest.raises(StoreError, match="no database at"):
        open_store(f"sqlite:///{path}", must_exist=True)
    open_store(f"sqlite:///{path}").close()  # the default still creates it, folders included
    with open_store(path, must_exist=True) as store:  # and now it exists
        assert store.audit.count() == 0
