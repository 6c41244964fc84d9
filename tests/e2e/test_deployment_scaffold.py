"""SCAFFOLD with server momentum under SecAgg+ across real processes: the SuperLink, two SuperNodes and their
ClientApp processes on 127.0.0.1 (TLS, node auth). Each message runs in its own ClientApp process, so a member's
control variate survives between rounds only through the run state its SuperNode keeps."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mamori.deploy import (
    ConsortiumConfig,
    NodeConfig,
    completed_rounds,
    init_ca,
    issue_node_key,
    issue_server_cert,
    register_node_key,
    run_federated,
    start_node,
    start_superlink,
    stop_process,
    sync_members,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in reversed(started):
        stop_process(p, timeout_s=5)


def test_scaffold_control_variates_survive_between_rounds_in_separate_processes(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    from mamori.simulate import SimulationConfig, iter_bank_events
    from mamori.store import AuditLog, open_store

    # Prepare: two members with simulated traffic, keys registered with the coordinator
    data = {}
    for profile, events in iter_bank_events(SimulationConfig(banks=2, days=1, scale=0.01, seed=6)):
        data[profile.bank_id] = tmp_path / f"{profile.bank_id}.parquet"
        events.write_parquet(data[profile.bank_id])
    names = sorted(data)
    pki = tmp_path / "pki"
    init_ca(pki)
    issue_server_cert(pki)
    for n in names:
        _, pub = issue_node_key(tmp_path / "keys", n)
        register_node_key(pki, n, pub)
    port = _free_port()
    cfg = ConsortiumConfig.model_validate({
        "coordinator": {"port": port, "state_dir": tmp_path / "state", "pki_dir": pki},
        "federation": {"num_rounds": 2, "min_train_nodes": 2, "min_available_nodes": 2, "min_evaluate_nodes": 0,
                       "fraction_evaluate": 0.0, "round_timeout_s": 60, "hidden": "16",
                       "client_algorithm": "scaffold", "server_optimizer": "fedavgm", "server_momentum": 0.5},
    })
    assert cfg.federation.secure_aggregation  # the default: SecAgg+
    procs.append(start_superlink(cfg))
    sync_members(cfg)
    for n in names:
        node = NodeConfig(name=n, superlink=f"127.0.0.1:{port}", ca_cert=pki / "ca.crt",
                          private_key=tmp_path / "keys" / f"{n}.key", data_path=data[n],
                          model_dir=tmp_path / n / "model", runtime_port=_free_port())
        procs.append(start_node(node, tmp_path / f"{n}.log"))
    # Execute
    result = run_federated(cfg, timeout_s=240)
    # Assert: both rounds trained, and round 2 of each member started from the c_i it kept after round 1
    assert result.ok, result.log
    assert completed_rounds(cfg) == 2
    for n in names:
        rows = [json.loads(line) for line in (tmp_path / n / "model" / "timings.jsonl").read_text().splitlines()]
        steps = [(r["round"], r["scaffold_control_from_round"]) for r in rows if r["phase"] == "train"]
        assert steps == [(1, 0), (2, 1)], (n, steps)
    store = open_store(cfg.resolved_store_url)
    starts = [e.details for e in AuditLog(store).entries() if e.action == "federation.run_start"]
    store.close()
    assert [(s["client_algorithm"], s["server_optimizer"], s["secure_aggregation"]) for s in starts] == [
        ("scaffold", "fedavgm", True)]
    print(f"2 SecAgg+ SCAFFOLD rounds over 2 member processes: {result.seconds:.1f} s")
