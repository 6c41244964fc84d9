"""Coordinator (SuperLink) and member SuperNodes as separate processes on 127.0.0.1, TLS and node auth on."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _registered_members(root: Path, banks: int, seed: int) -> tuple[list[str], dict[str, Path], Path]:
    """Simulated traffic of ``banks`` members, a CA and server certificate, and every member's key registered."""
    from mamori.simulate import SimulationConfig, iter_bank_events

    data = {}
    for profile, events in iter_bank_events(SimulationConfig(banks=banks, days=1, scale=0.01, seed=seed)):
        data[profile.bank_id] = root / f"{profile.bank_id}.parquet"
        events.write_parquet(data[profile.bank_id])
    pki = root / "pki"
    init_ca(pki)
    issue_server_cert(pki)
    for n in sorted(data):
        _, pub = issue_node_key(root / "keys", n)
        register_node_key(pki, n, pub)
    return sorted(data), data, pki


def test_secure_rounds_over_tls_with_node_auth_restart_and_intruder(
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
        # member-level DP on top of SecAgg+: its spend must reach the privacy ledger under the members' names
        "federation": {"num_rounds": 2, "min_train_nodes": 2, "min_available_nodes": 2, "round_timeout_s": 150,
                       "hidden": "16", "member_dp_epsilon": 8.0},
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
        model = np.load(tmp_path / n / "model" / "global.npz")  # the evaluation exchange brought round 1
        assert int(model["server_round"]) == 1
    # SecAgg+ (on by default): the round's checkpoint says so, and no member failed
    from mamori.store import ModelRegistry

    rounds = {r.version: r for r in ModelRegistry(store).list(cfg.federation.model_name)}
    assert rounds[1].metadata["secure_aggregation"] is True
    assert "federation.member_failed" not in [e.action for e in audit.entries()]

    # the unregistered node was refused (Flower exits it) and never got a task; the refusal is audited
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
    published = ModelRegistry(store).list(cfg.federation.published_name)
    assert [r.version for r in published] == [1, 2]  # each completed run publishes its global model

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
    assert all(s["member_dp"] for s in starts)
    # each run's member-level DP spend is in the ledger: per registered member, under the audited run id
    from mamori.store import PrivacyLedger

    entries = PrivacyLedger(store).entries()
    assert [(e.run_id, e.server_round, e.member) for e in entries] == [
        (f"flower-{starts[0]['run_id']}", 1, members[0]), (f"flower-{starts[0]['run_id']}", 1, members[1]),
        (f"flower-{starts[1]['run_id']}", 2, members[0]), (f"flower-{starts[1]['run_id']}", 2, members[1]),
    ]
    assert all(e.unit == "member" and 0 < e.epsilon <= 8.0 * (1 + 1e-6) for e in entries)
    store.close()
    print(f"one round with 2 nodes: {one_round_s:.1f} s; second run {second.seconds:.1f} s")


def test_a_node_killed_mid_round_does_not_fail_the_round(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    import threading

    from mamori.store import AuditLog, open_store

    names, data, pki = _registered_members(tmp_path, banks=3, seed=4)
    port = _free_port()
    cfg = ConsortiumConfig.model_validate({
        "coordinator": {"port": port, "state_dir": tmp_path / "state", "pki_dir": pki},
        # three members, two suffice; no evaluation exchange, to keep the test short
        "federation": {"num_rounds": 1, "min_train_nodes": 2, "min_available_nodes": 3, "min_evaluate_nodes": 0,
                       "fraction_evaluate": 0.0, "round_timeout_s": 45, "hidden": "16", "secure_aggregation": False},
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
    # the first train message is the stats round (consortium standardisation), the second the training round's
    while (tmp_path / f"{victim}.log").read_text().count("Receiving: train message") < 2:
        assert time.monotonic() < deadline, "the victim never received its training round's train message"
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


def test_scaffold_control_variates_survive_between_rounds_in_separate_processes(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """SCAFFOLD with server momentum under SecAgg+: each message runs in its own ClientApp process, so a member's
    control variate survives between rounds only through the run state its SuperNode keeps."""
    from mamori.store import AuditLog, ModelRegistry, open_store

    # Prepare: two members with simulated traffic, keys registered with the coordinator
    names, data, pki = _registered_members(tmp_path, banks=2, seed=6)
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
        procs.append(start_node(_node(tmp_path, n, port, data[n]), tmp_path / f"{n}.log"))
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
    published = ModelRegistry(store).get("latest", name=cfg.federation.published_name).arrays()
    store.close()
    # every process masked with the same generator (mamori.federation.secagg_masks), so the masks cancelled and the
    # published model is a model: a sum left with a member's self-mask unmasks to weights in the tens or more
    assert all(np.isfinite(w).all() and float(np.abs(w).max()) < 8.0 for w in published)
    assert [(s["client_algorithm"], s["server_optimizer"], s["secure_aggregation"]) for s in starts] == [
        ("scaffold", "fedavgm", True)]
    print(f"2 SecAgg+ SCAFFOLD rounds over 2 member processes: {result.seconds:.1f} s")


def _get(url: str, auth: tuple[str, str] | None = None) -> Any:
    import requests

    return requests.get(url, auth=auth, timeout=10)


def _wait(what: str, check: Any, timeout_s: float, *alive: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        for p in alive:
            assert p.poll() is None, f"{what}: process {p.args!r} exited with {p.returncode}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_coordinator_cli_services_schedule_model_pull_and_sightings(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """`mamori coordinator start` with TAXII, registry API, dashboard and a 3 s schedule; two `mamori node`s
    with SecAgg+; a node's scoring service hot-reloads the published model; a sighting pushed by one node is
    read over TAXII by the other member; SIGTERM stops everything."""
    import sys

    import polars as pl

    from mamori.deploy import flower_env, wait_for_port
    from mamori.detect import train_scoring_model
    from mamori.intel import TaxiiClient
    from mamori.intel.taxii import add_member
    from mamori.simulate import SimulationConfig, iter_bank_events
    from mamori.store import open_store

    mamori = str(Path(sys.executable).parent / "mamori")
    data: dict[str, Path] = {}
    frames = {}
    for profile, events in iter_bank_events(SimulationConfig(banks=2, days=1, scale=0.01, seed=5)):
        data[profile.bank_id] = tmp_path / f"{profile.bank_id}.parquet"
        events.write_parquet(data[profile.bank_id])
        frames[profile.bank_id] = events
    names = sorted(data)
    pki = tmp_path / "pki"
    init_ca(pki)
    issue_server_cert(pki)
    for n in names:
        _, pub = issue_node_key(tmp_path / "keys", n)
        register_node_key(pki, n, pub)
    ports = {k: _free_port() for k in ("link", "taxii", "registry", "dashboard")}
    (tmp_path / "consortium.toml").write_text(
        f"[coordinator]\nport = {ports['link']}\n"
        "[federation]\nnum_rounds = 1\nmin_train_nodes = 2\nmin_available_nodes = 2\nmin_evaluate_nodes = 0\n"
        "fraction_evaluate = 0.0\nround_timeout_s = 150\nhidden = '16'\n"
        "[schedule]\ninterval_minutes = 0.05\n"  # a run every 3 s after the previous one ends
        f"[taxii]\nport = {ports['taxii']}\n[registry]\nport = {ports['registry']}\n"
        f"[dashboard]\nport = {ports['dashboard']}\n"
    )
    # TAXII members (API keys) for the two banks, in the coordinator's store
    keys = {}
    with open_store(f"sqlite:///{tmp_path / 'coordinator-state' / 'mamori.db'}") as store:
        for n in names:
            _, keys[n] = add_member(store, n, n, read=["*"], write=["sightings"])
    for n in names:
        (tmp_path / f"{n}.apikey").write_text(keys[n] + "\n")
        (tmp_path / f"{n}.apikey").chmod(0o600)

    cli = subprocess.Popen([mamori, "coordinator", "start", "--config", "consortium.toml"], cwd=tmp_path,
                           env=flower_env(), stdout=open(tmp_path / "coordinator.out", "wb"),
                           stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(cli)
    for port in ports.values():
        wait_for_port("127.0.0.1", port, 120, cli)
    assert _get(f"http://127.0.0.1:{ports['dashboard']}/login").status_code == 200
    assert _get(f"http://127.0.0.1:{ports['taxii']}/taxii2/").status_code == 401
    taxii_url = f"http://127.0.0.1:{ports['taxii']}/taxii2/"
    assert "sightings" in {c.get("alias") for c in TaxiiClient(taxii_url, names[0], keys[names[0]]).collections()}
    assert _get(f"http://127.0.0.1:{ports['registry']}/v1/models/consortium-attack-classifier",
                (names[0], "wrong")).status_code == 401

    # bank A's scoring bundle (same architecture as the consortium's model), seeding its local registry
    bundle = train_scoring_model([frames[names[0]]], hidden_layers=(16,), epochs=1, seed=1)
    bundle.save(tmp_path / "bank-a.mamori-model.npz")
    node_cli = {}
    for n in names:
        runtime_port = _free_port()
        (tmp_path / f"{n}.toml").write_text(
            f'name = "{n}"\nsuperlink = "127.0.0.1:{ports["link"]}"\nca_cert = "pki/ca.crt"\n'
            f'private_key = "keys/{n}.key"\ndata_path = "{n}.parquet"\nmodel_dir = "{n}/model"\n'
            f"runtime_port = {runtime_port}\n"
            f'member = "{n}"\napi_key_file = "{n}.apikey"\n'
            f'registry_url = "http://127.0.0.1:{ports["registry"]}"\npull_interval_s = 1\n'
            f'taxii_url = "http://127.0.0.1:{ports["taxii"]}/taxii2/"\nalerts_path = "{n}/alerts.jsonl"\n'
            "push_interval_s = 1\n"
            + ('scoring_bundle = "bank-a.mamori-model.npz"\n' if n == names[0] else "")
        )
        (tmp_path / n / "model").mkdir(parents=True)
        node_cli[n] = subprocess.Popen([mamori, "node", "--config", f"{n}.toml"], cwd=tmp_path, env=flower_env(),
                                       stdout=open(tmp_path / f"{n}.out", "wb"), stderr=subprocess.STDOUT,
                                       start_new_session=True)
        procs.append(node_cli[n])
    a = names[0]
    local = tmp_path / a / "model" / "node.db"
    _wait("bank A's local registry", local.exists, 120, node_cli[a])
    serve_port = _free_port()
    serve = subprocess.Popen(
        [mamori, "serve", "--db", f"sqlite:///{local}", "--name", "consortium-attack-classifier",
         "--model", "bank-a.mamori-model.npz", "--port", str(serve_port), "--alerts", f"{a}/alerts.jsonl",
         "--reload-interval", "1"],
        cwd=tmp_path, env=flower_env(), stdout=open(tmp_path / "serve.out", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    procs.append(serve)
    wait_for_port("127.0.0.1", serve_port, 120, serve)
    before = _get(f"http://127.0.0.1:{serve_port}/v1/model").json()
    assert before["version"] == 0

    # bank A scores its attack traffic; the alerts become sightings pushed to the coordinator's TAXII server
    import requests

    attacks = frames[a].filter(pl.col("labels.is_attack")).drop([c for c in frames[a].columns
                                                                   if c.startswith("labels.")])
    rows = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items() if v is not None}
            for r in attacks.head(500).to_dicts()]
    scored = requests.post(f"http://127.0.0.1:{serve_port}/v1/score", json={"events": rows}, timeout=120).json()
    assert scored["alerts"], "the scoring service raised no alert on attack traffic"
    reader = TaxiiClient(f"http://127.0.0.1:{ports['taxii']}/taxii2/", names[1], keys[names[1]])
    sightings = _wait("bank A's sightings on TAXII",
                      lambda: [o for o in reader.pull("sightings") if o["type"] == "sighting"], 120, node_cli[a])
    assert sightings and all("user" not in json.dumps(o) for o in sightings)  # no customer identifier

    # the scheduled run (SecAgg+) completes, its model is published, pulled by the node and hot-reloaded
    def reloaded() -> Any:
        info = _get(f"http://127.0.0.1:{serve_port}/v1/model").json()
        return info if info["version"] >= 1 else None

    after = _wait("the scoring service to report the new global model", reloaded, 400, cli, serve)
    published = _get(f"http://127.0.0.1:{ports['registry']}/v1/models/consortium-attack-classifier",
                     (a, keys[a])).json()
    # the service runs the node's bundle with the published weights and the consortium's standardiser (stored in
    # node.db as one bundle: the service reports that entry's hash; the entry records the published one)
    assert after["version"] == published["version"] >= 1 and after["sha256"] != before["sha256"]
    from mamori.deploy.flowerapp import standardizer_from_json
    from mamori.detect import ScoringModel
    from mamori.store import ModelRegistry

    with open_store(f"sqlite:///{local}") as node_store:
        registry = ModelRegistry(node_store)
        pulled = registry.get("latest", name="consortium-attack-classifier")
        assert pulled.record.metadata["published_sha256"] == published["sha256"] and after["sha256"] == \
            pulled.record.sha256
        expected = ScoringModel.from_registry(registry, pulled.record.sha256, name="consortium-attack-classifier")
    assert expected.weights_sha256 == published["sha256"]  # exactly the published weights
    consortium = standardizer_from_json(published["standardizer"])
    np.testing.assert_array_equal(expected.mean, consortium.mean_)
    np.testing.assert_array_equal(expected.scale, consortium.scale_)
    assert [np.asarray(w).tolist() for w in expected.weights] != [np.asarray(w).tolist() for w in bundle.weights]
    from mamori.store import AuditLog

    def audited() -> Any:
        with open_store(f"sqlite:///{tmp_path / 'coordinator-state' / 'mamori.db'}") as store:
            entries = AuditLog(store).entries()
        # `flwr run --stream` returns a little after the ServerApp published the model
        return entries if any(e.action == "federation.scheduled_run" for e in entries) else None

    entries = _wait("the scheduled run's audit entry", audited, 120, cli)
    runs = [e.details for e in entries if e.action == "federation.scheduled_run"]
    assert runs[0]["returncode"] == 0 and runs[0]["rounds_after"] >= 1
    starts = [e.details for e in entries if e.action == "federation.run_start"]
    assert starts and starts[0]["secure_aggregation"] is True

    # SIGTERM: the coordinator stops its SuperLink and its three services; the nodes stop their SuperNodes
    stop_process(serve, timeout_s=10)  # (mamori serve is not part of this package)
    for p in (*node_cli.values(), cli):
        p.send_signal(signal.SIGTERM)
    for p in (*node_cli.values(), cli):
        assert p.wait(timeout=60) == 0, p.args
    for port in ports.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
    leftover = subprocess.run(["pgrep", "-f", f"--port {ports['link']}"], capture_output=True, text=True)
    assert leftover.stdout.split() == []
    print(f"published v{published['version']} {published['sha256'][:12]}; scoring service now "
          f"v{after['version']} {after['sha256'][:12]}; {len(sightings)} sighting(s) read by {names[1]}")
