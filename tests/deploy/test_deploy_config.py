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


def test_node_command_needs_its_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing"):
        node_command(NodeConfig(ca_cert=tmp_path / "ca.crt", private_key=tmp_path / "k"))
    (tmp_path / "ca.crt").write_text("x")
    (tmp_path / "k").write_text("x")
    cmd = node_command(NodeConfig(name="bank-a", ca_cert=tmp_path / "ca.crt", private_key=tmp_path / "k"))
    assert "--insecure" not in cmd and "--root-certificates" in cmd and "--auth-supernode-private-key" in cmd
    assert 'node-name="bank-a"' in cmd[-1]
