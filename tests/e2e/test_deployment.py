"""Coordinator (SuperLink) and member SuperNodes as separate processes on 127.0.0.1, TLS and node auth on."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mamori.deploy import (
    ConsortiumConfig,
    NodeConfig,
    audit_refusals,
    completed_rounds,
    init_ca,
    issue_node_key,
    issue_server_cert,
    key_fingerprint,
    register_node_key,
    revoke_node,
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


def _node(root: Path, name: str, port: int, data: Path) -> NodeConfig:
    return NodeConfig(
        name=name, superlink=f"127.0.0.1:{port}", ca_cert=root / "pki" / "ca.crt",
        private_key=root / "keys" / f"{name}.key", data_path=data, model_dir=root / name / "model",
        runtime_port=_free_port(),
    )


def test_rounds_over_tls_with_node_auth_restart_and_intruder(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    from mamori.simulate import SimulationConfig, iter_bank_events

    data = {}
    for profile, events in iter_bank_events(SimulationConfig(banks=3, days=1, scale=0.01, seed=3)):
        data[profile.bank_id] = tmp_path / f"{profile.bank_id}.parquet"
        events.write_parquet(data[profile.bank_id])
    names = sorted(data)
    members, intruder_name = names[:2], names[2]
    pki = tmp_path / "pki"
    init_ca(pki)
    issue_server_cert(pki)
    for n in names:
        _, pub = issue_node_key(tmp_path / "keys", n)
        if n in members:
            register_node_key(pki, n, pub)
    assert (pki / "ca.key").stat().st_mode & 0o777 == 0o600

    port = _free_port()
    cfg = ConsortiumConfig.model_validate({
        "coordinator": {"port": port, "state_dir": tmp_path / "state", "pki_dir": pki},
        "federation": {"num_rounds": 2, "min_train_nodes": 2, "min_available_nodes": 2, "round_timeout_s": 150,
                       "hidden": "16"},
    })
    from mamori.store import AuditLog, open_store

    link = start_superlink(cfg)
    procs.append(link)
    store = open_store(cfg.resolved_store_url)
    audit = AuditLog(store)
    ids = sync_members(cfg, audit)
    assert sorted(ids) == members
    for n in members:
        procs.append(start_node(_node(tmp_path, n, port, data[n]), tmp_path / f"{n}.log"))
    bad = _node(tmp_path, intruder_name, port, data[intruder_name])
    procs.append(start_node(bad, tmp_path / "intruder.log"))

    # round 1
    t0 = time.perf_counter()
    first = run_federated(cfg, more_rounds=1, timeout_s=240)
    assert first.ok, first.log
    assert (first.rounds_before, first.rounds_after) == (0, 1)
    one_round_s = time.perf_counter() - t0
    for n in members:
        model = np.load(tmp_path / n / "model" / "global.npz")
        assert int(model["server_round"]) == 1

    assert first.log.count("Received 2 results and 0 failures") == 2, first.log  # train and evaluate

    # the unregistered node was refused (Flower exits it) and never got a task; the refusal is audited
    assert "Sampled 2 nodes (out of 2)" in first.log
    intruder = procs[-1]
    assert intruder.wait(timeout=60) != 0
    assert "Receiving" not in (tmp_path / "intruder.log").read_text()
    refused = audit_refusals(cfg, audit)
    assert refused and set(refused) == {key_fingerprint((tmp_path / "keys" / f"{intruder_name}.pub").read_text())}

    # coordinator SIGKILLed and restarted on the same database: the nodes rejoin by themselves,
    # the next run resumes from round 1's checkpoint
    stop_process(link, sig=signal.SIGKILL, timeout_s=2)
    procs.remove(link)
    link = start_superlink(cfg)
    procs.append(link)
    # (train only this time, to keep the test short; the evaluation exchange was exercised in round 1)
    train_only = cfg.model_copy(update={"federation": cfg.federation.model_copy(
        update={"fraction_evaluate": 0.0, "min_evaluate_nodes": 0})})
    second = run_federated(train_only, timeout_s=240)
    assert second.ok, second.log
    assert (second.rounds_before, second.rounds_after) == (1, 2), second.log
    assert completed_rounds(cfg) == 2
    assert second.log.count("Received 2 results and 0 failures") == 1, second.log

    # revoking a member unregisters its key from the SuperLink, audited
    revoke_node(pki, members[1])
    assert sorted(sync_members(cfg, audit)) == [members[0]]
    actions = [e.action for e in audit.entries()]
    assert actions.count("node.unregister") == 1
    assert "federation.member_failed" not in actions and "federation.round_failed" not in actions
    assert actions.count("node.register") == 2
    assert actions.count("federation.run_start") == 2
    starts = [e.details for e in audit.entries() if e.action == "federation.run_start"]
    assert [s["resume_from"] for s in starts] == [0, 1]
    store.close()
    print(f"one round with 2 nodes: {one_round_s:.1f} s; second run {second.seconds:.1f} s")


def test_a_node_killed_mid_round_does_not_fail_the_round(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    import threading

    from mamori.simulate import SimulationConfig, iter_bank_events
    from mamori.store import AuditLog, open_store

    data = {}
    for profile, events in iter_bank_events(SimulationConfig(banks=3, days=1, scale=0.01, seed=4)):
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
        # three members, two suffice; no evaluation exchange, to keep the test short
        "federation": {"num_rounds": 1, "min_train_nodes": 2, "min_available_nodes": 3, "min_evaluate_nodes": 0,
                       "fraction_evaluate": 0.0, "round_timeout_s": 45, "hidden": "16"},
    })
    procs.append(start_superlink(cfg))
    sync_members(cfg)
    nodes = {}
    for n in names:
        nodes[n] = start_node(_node(tmp_path, n, port, data[n]), tmp_path / f"{n}.log")
        procs.append(nodes[n])
    outcome: dict[str, object] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=run_federated(cfg, timeout_s=240)))
    runner.start()
    victim = names[-1]
    deadline = time.monotonic() + 180
    while "Receiving: train message" not in (tmp_path / f"{victim}.log").read_text():
        assert time.monotonic() < deadline, "the victim never received its train message"
        time.sleep(0.2)
    stop_process(nodes[victim], sig=signal.SIGKILL, timeout_s=2)  # SuperNode and its ClientApp, mid-round
    runner.join(timeout=240)
    result = outcome["result"]
    assert result.ok, result.log  # type: ignore[attr-defined]
    assert "Received 2 results" in result.log  # type: ignore[attr-defined]
    store = open_store(cfg.resolved_store_url)
    failed = [e.details for e in AuditLog(store).entries() if e.action == "federation.member_failed"]
    store.close()
    assert completed_rounds(cfg) == 1
    assert [f["phase"] for f in failed] == ["train"] and failed[0]["ok"] == 2 and failed[0]["failed"] == 1
    print(f"round with one of 3 nodes killed mid-round: {result.seconds:.1f} s; audited failures: {failed}")  # type: ignore[attr-defined]


def test_coordinator_cli_starts_registers_and_stops_cleanly(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    import sys

    from mamori.deploy import flower_env, wait_for_port

    pki = tmp_path / "pki"
    init_ca(pki)
    issue_server_cert(pki)
    _, pub = issue_node_key(tmp_path / "keys", "bank-a")
    register_node_key(pki, "bank-a", pub)
    port = _free_port()
    (tmp_path / "consortium.toml").write_text(f"[coordinator]\nport = {port}\n")
    cli = subprocess.Popen(
        [str(Path(sys.executable).parent / "mamori"), "coordinator", "start", "--config", "consortium.toml"],
        cwd=tmp_path, env=flower_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    procs.append(cli)
    wait_for_port("127.0.0.1", port, 120, cli)
    registered = tmp_path / "coordinator-state" / "registered.json"
    deadline = time.monotonic() + 120
    while not registered.exists() or "bank-a" not in registered.read_text():
        assert time.monotonic() < deadline and cli.poll() is None
        time.sleep(0.5)
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(timeout=60) == 0
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the SuperLink went down with the coordinator
    leftover = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True).stdout.split()
    assert leftover == []
