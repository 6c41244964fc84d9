"""consortium.toml and node.toml validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mamori.deploy import ConsortiumConfig, NodeConfig, load_consortium_config, load_node_config, superlink_command
from mamori.deploy.runtime import node_command, write_app_dir
from mamori.errors import ConfigError


def test_empty_files_are_valid(tmp_path: Path) -> None:
    (tmp_path / "consortium.toml").write_text("")
    (tmp_path / "node.toml").write_text("")
    cfg = load_consortium_config(tmp_path / "consortium.toml")
    assert cfg.coordinator.host == "127.0.0.1"
    assert cfg.coordinator.state_dir == (tmp_path / "coordinator-state").resolve()
    assert cfg.resolved_store_url.startswith("sqlite:///") and cfg.resolved_store_url.endswith("mamori.db")
    node = load_node_config(tmp_path / "node.toml")
    assert node.runtime_host == "127.0.0.1"
    assert node.data_path == (tmp_path / "events").resolve()


def test_unknown_keys_and_bad_values_are_rejected(tmp_path: Path) -> None:
    p = tmp_path / "consortium.toml"
    p.write_text("[coordinator]\nprot = 1\n")
    with pytest.raises(ConfigError, match="coordinator.prot"):
        load_consortium_config(p)
    p.write_text("[federation]\nmin_train_nodes = 3\nmin_available_nodes = 2\n")
    with pytest.raises(ConfigError, match="min_train_nodes"):
        load_consortium_config(p)
    p.write_text("[federation]\nhidden = 'big'\n")
    with pytest.raises(ConfigError, match="hidden"):
        load_consortium_config(p)
    p.write_text("not toml [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_consortium_config(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_node_config(tmp_path / "missing.toml")
    n = tmp_path / "node.toml"
    n.write_text("runtime_port = 70000\n")
    with pytest.raises(ConfigError, match="runtime_port"):
        load_node_config(n)


def test_models_are_frozen() -> None:
    cfg = ConsortiumConfig()
    with pytest.raises(ValidationError):
        cfg.coordinator.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        NodeConfig(surplus=1)  # type: ignore[call-arg]


def test_superlink_command_has_tls_auth_and_no_dependency_install(tmp_path: Path) -> None:
    from mamori.deploy import init_ca, issue_server_cert

    init_ca(tmp_path / "pki")
    issue_server_cert(tmp_path / "pki")
    cfg = ConsortiumConfig.model_validate(
        {"coordinator": {"pki_dir": tmp_path / "pki", "state_dir": tmp_path / "state", "port": 9999}}
    )
    cmd = superlink_command(cfg)
    assert "--insecure" not in cmd
    for flag in ("--ssl-certfile", "--ssl-keyfile", "--ssl-ca-certfile", "--enable-supernode-auth", "--database",
                 "--disable-runtime-dependency-installation"):
        assert flag in cmd
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    app = write_app_dir(cfg)
    text = (app / "pyproject.toml").read_text()
    assert 'serverapp = "mamori.deploy.flowerapp:server_app"' in text
    assert "store-url" in text
    # the ServerApp names the privacy ledger's members from the registrations sync-members keeps
    assert f'registered-file = "{tmp_path / "state" / "registered.json"}"' in text


def test_node_command_needs_its_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing"):
        node_command(NodeConfig(ca_cert=tmp_path / "ca.crt", private_key=tmp_path / "k"))
    (tmp_path / "ca.crt").write_text("x")
    (tmp_path / "k").write_text("x")
    cmd = node_command(NodeConfig(name="bank-a", ca_cert=tmp_path / "ca.crt", private_key=tmp_path / "k"))
    assert "--insecure" not in cmd and "--root-certificates" in cmd and "--auth-supernode-private-key" in cmd
    assert any('node-name="bank-a"' in part for part in cmd)
    # the default: mamori's warm worker runs the SuperNode in Flower's process isolation mode
    assert cmd[1:3] == ["-m", "mamori.deploy.worker"] and cmd[-2:] == ["--isolation", "process"]
    assert cmd[cmd.index("--runtime-api-address") + 1] == "127.0.0.1:9094"
    flower = node_command(NodeConfig(ca_cert=tmp_path / "ca.crt", private_key=tmp_path / "k", isolation="subprocess"))
    assert flower[0].endswith("flower-supernode") and "--isolation" not in flower


def test_secure_aggregation_is_on_by_default_and_picks_the_secagg_client_app(tmp_path: Path) -> None:
    cfg = ConsortiumConfig.model_validate({"coordinator": {"state_dir": tmp_path / "state"}})
    assert cfg.federation.secure_aggregation
    assert (cfg.taxii.port, cfg.registry.port, cfg.dashboard.port) == (8021, 8022, 8023)
    text = (write_app_dir(cfg) / "pyproject.toml").read_text()
    assert 'clientapp = "mamori.deploy.flowerapp:secure_client_app"' in text and "secure-aggregation = true" in text
    assert 'published-name = "consortium-attack-classifier.published"' in text
    dp = cfg.model_copy(update={"federation": cfg.federation.model_copy(update={"member_dp_epsilon": 4.0})})
    assert 'clientapp = "mamori.deploy.flowerapp:secure_dp_client_app"' in (write_app_dir(dp) / "pyproject.toml"
                                                                            ).read_text()
    plain = ConsortiumConfig.model_validate({"coordinator": {"state_dir": tmp_path / "s2"},
                                             "federation": {"secure_aggregation": False}})
    assert 'clientapp = "mamori.deploy.flowerapp:client_app"' in (write_app_dir(plain) / "pyproject.toml").read_text()
    with pytest.raises(ValidationError, match="min_train_nodes >= 2"):
        ConsortiumConfig.model_validate({"federation": {"min_train_nodes": 1}})
    with pytest.raises(ValidationError, match="secure-aggregation path"):
        ConsortiumConfig.model_validate({"federation": {"secure_aggregation": False, "member_dp_epsilon": 1.0}})


def test_server_optimizer_and_scaffold_reach_the_run_config_and_follow_the_federations_rules(tmp_path: Path) -> None:
    import tomllib

    # Prepare
    p = tmp_path / "consortium.toml"
    p.write_text(f'[coordinator]\nstate_dir = "{tmp_path / "state"}"\n[federation]\nserver_optimizer = "fedavgm"\n'
                 'server_momentum = 0.8\nclient_algorithm = "scaffold"\n')
    # Execute
    cfg = load_consortium_config(p)
    run_config = tomllib.loads((write_app_dir(cfg) / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    # Assert: what the coordinator's ServerApp reads; an unset server_lr is absent (TOML has no null)
    assert (run_config["server-optimizer"], run_config["server-momentum"], run_config["client-algorithm"]) == (
        "fedavgm", 0.8, "scaffold")
    assert "server-lr" not in run_config
    defaults = tomllib.loads((write_app_dir(ConsortiumConfig.model_validate(
        {"coordinator": {"state_dir": tmp_path / "s2"}})) / "pyproject.toml").read_text())["tool"]["flwr"]["app"]
    assert (defaults["config"]["server-optimizer"], defaults["config"]["client-algorithm"]) == ("fedavg", "plain")
    # member-level DP's noise is calibrated for the plain mean, without a control variate: refused, named
    p.write_text('[federation]\nclient_algorithm = "scaffold"\nmember_dp_epsilon = 4.0\n')
    with pytest.raises(ConfigError, match="client_algorithm='scaffold' cannot be combined with member_dp_epsilon > 0"):
        load_consortium_config(p)
    p.write_text("[federation]\nserver_momentum = 0.9\n")
    with pytest.raises(ConfigError, match="server_momentum/server_lr need a server optimizer"):
        load_consortium_config(p)
    p.write_text('[federation]\nclient_algorithm = "fedprox"\n')
    with pytest.raises(ConfigError, match="client_algorithm"):
        load_consortium_config(p)
