"""The consortium PKI: CA, coordinator certificate, node keys, member registry."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mamori.deploy import (
    PKIPaths,
    init_ca,
    issue_node_key,
    issue_server_cert,
    key_fingerprint,
    list_members,
    load_members,
    register_node_key,
    revoke_node,
)
from mamori.errors import ConfigError


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def pki(tmp_path: Path) -> PKIPaths:
    paths = init_ca(tmp_path / "pki")
    issue_server_cert(paths.root)
    return paths


def test_files_are_private(pki: PKIPaths, tmp_path: Path) -> None:
    assert _mode(pki.root) == 0o700
    for f in (pki.ca_key, pki.ca_cert, pki.server_key, pki.server_cert, pki.members):
        assert _mode(f) == 0o600, f
    private, public = issue_node_key(tmp_path / "keys", "bank-a")
    assert _mode(private) == 0o600 and _mode(public) == 0o600
    assert not list((tmp_path / "keys").glob("*.tmp"))


def test_server_cert_chains_to_ca_with_loopback_sans(pki: PKIPaths) -> None:
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # what a TLS client does: the server pair loads and verifies against the CA for 127.0.0.1
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.server_cert, pki.server_key)
    client_ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    assert client_ctx.verify_mode == ssl.CERT_REQUIRED


def test_tls_handshake_on_loopback(pki: PKIPaths) -> None:
    import socket
    import threading

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.server_cert, pki.server_key)
    client_ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")

        t = threading.Thread(target=serve)
        t.start()
        with socket.create_connection(("127.0.0.1", port)) as raw, client_ctx.wrap_socket(
            raw, server_hostname="127.0.0.1"
        ) as tls:
            assert tls.recv(2) == b"ok"
        t.join(5)


def test_rotation_replaces_server_key(pki: PKIPaths) -> None:
    old = pki.server_key.read_bytes()
    issue_server_cert(pki.root, hosts=("127.0.0.1",))
    assert pki.server_key.read_bytes() != old


def test_ca_is_not_overwritten_by_accident(pki: PKIPaths) -> None:
    with pytest.raises(ConfigError, match="already exists"):
        init_ca(pki.root)
    init_ca(pki.root, overwrite=True)


def test_server_cert_needs_a_ca(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mamori pki init"):
        issue_server_cert(tmp_path / "nothing")


def test_node_keys_are_flower_compatible(tmp_path: Path) -> None:
    private, public = issue_node_key(tmp_path, "bank-a")
    key = serialization.load_ssh_private_key(private.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # what flower-supernode requires
    pub = serialization.load_ssh_public_key(public.read_bytes())
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp384r1"
    with pytest.raises(ConfigError, match="exists"):
        issue_node_key(tmp_path, "bank-a")
    issue_node_key(tmp_path, "bank-a", overwrite=True)


@pytest.mark.parametrize("name", ["", "Bank A", "../x", "-x", "a" * 64])
def test_bad_node_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="node name"):
        issue_node_key(tmp_path, name)


def test_register_revoke_and_rotate(pki: PKIPaths, tmp_path: Path) -> None:
    _, pub_a = issue_node_key(tmp_path / "a", "bank-a")
    _, pub_b = issue_node_key(tmp_path / "b", "bank-b")
    a = register_node_key(pki.root, "bank-a", pub_a)
    register_node_key(pki.root, "bank-b", pub_b)
    assert a.fingerprint == key_fingerprint(pub_a.read_text())
    assert [m.name for m in list_members(pki.root)] == ["bank-a", "bank-b"]
    with pytest.raises(ConfigError, match="already registered for 'bank-a'"):
        register_node_key(pki.root, "bank-c", pub_a)
    revoked = revoke_node(pki.root, "bank-b")
    assert revoked.status == "revoked" and revoked.revoked_at
    assert load_members(pki.root)["bank-b"].status == "revoked"
    with pytest.raises(ConfigError, match="no member 'bank-z'"):
        revoke_node(pki.root, "bank-z")
    # rotation: a new pair for bank-a replaces the old key
    _, pub_a2 = issue_node_key(tmp_path / "a", "bank-a", overwrite=True)
    a2 = register_node_key(pki.root, "bank-a", pub_a2)
    assert a2.fingerprint != a.fingerprint and a2.status == "active"


def test_fingerprint_rejects_non_ec_keys() -> None:
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    with pytest.raises(ConfigError, match="EC"):
        key_fingerprint(line)
    with pytest.raises(ConfigError, match="OpenSSH"):
        key_fingerprint("not a key")


def test_corrupt_registry(pki: PKIPaths) -> None:
    pki.members.write_text("[1, 2")
    with pytest.raises(ConfigError, match="members.json"):
        load_members(pki.root)
