"""The consortium's public-key infrastructure.

One directory (the *PKI directory*, mode 0700) on the coordinator holds:

``ca.key`` / ``ca.crt``
    the consortium CA (EC P-384, self-signed). It signs the coordinator's TLS certificate;
    every member trusts ``ca.crt`` to verify the coordinator.
``server.key`` / ``server.crt``
    the coordinator's TLS key and certificate, with the coordinator's hosts as subject
    alternative names (``127.0.0.1`` and ``localhost`` by default).
``members.json``
    the member registry: per node name its SSH public key, SHA-256 fingerprint, status
    (``active`` / ``revoked``) and times. The coordinator registers the active keys with the
    Flower SuperLink (SuperNode authentication) and unregisters the revoked ones.

Node key pairs (EC P-384, OpenSSH encoding - the format Flower's SuperNode authentication reads)
are made by :func:`issue_node_key`, ideally on the member's own machine so the private key never
leaves it; only the ``.pub`` file is handed to the coordinator (:func:`register_node_key`).

Every file written here is created with mode 0600 (and directories 0700): private keys must not
be readable by other local users, and certificates carry nothing that needs wider access.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mamori.errors import ConfigError

__all__ = [
    "MemberKey",
    "PKIPaths",
    "init_ca",
    "issue_node_key",
    "issue_server_cert",
    "key_fingerprint",
    "list_members",
    "load_members",
    "register_node_key",
    "revoke_node",
]

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_CURVE = ec.SECP384R1()


@dataclass(frozen=True)
class PKIPaths:
    """Where the files of a PKI directory live.

    Parameters
    ----------
    root : Path
        The PKI directory.
    """

    root: Path

    @property
    def ca_key(self) -> Path:
        """Path of the CA's private key."""
        return self.root / "ca.key"

    @property
    def ca_cert(self) -> Path:
        """Path of the CA certificate (what members trust)."""
        return self.root / "ca.crt"

    @property
    def server_key(self) -> Path:
        """Path of the coordinator's TLS private key."""
        return self.root / "server.key"

    @property
    def server_cert(self) -> Path:
        """Path of the coordinator's TLS certificate."""
        return self.root / "server.crt"

    @property
    def members(self) -> Path:
        """Path of the member registry."""
        return self.root / "members.json"

    @property
    def nodes_dir(self) -> Path:
        """Directory holding the public keys handed in by members."""
        return self.root / "nodes"


@dataclass(frozen=True)
class MemberKey:
    """One member's entry in the registry.

    Parameters
    ----------
    name : str
        The node name (lowercase letters, digits, ``-`` and ``_``).
    public_key : str
        The OpenSSH public key line.
    fingerprint : str
        ``SHA256:`` + hex digest of the key's DER SubjectPublicKeyInfo.
    status : {"active", "revoked"}
        Revoked keys are unregistered from the SuperLink and refused.
    registered_at, revoked_at : str or None
        ISO-8601 UTC times.
    """

    name: str
    public_key: str
    fingerprint: str
    status: Literal["active", "revoked"]
    registered_at: str
    revoked_at: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check_name(name: str, what: str) -> str:
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"{what}: node name {name!r} is invalid; use 1-63 lowercase letters, digits, '-' or '_' "
            "starting with a letter or digit (e.g. 'bank-a')."
        )
    return name


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, never briefly world-readable."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_ca(paths: PKIPaths, where: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    if not paths.ca_key.is_file() or not paths.ca_cert.is_file():
        raise ConfigError(f"{where}: no consortium CA in {paths.root}; run `mamori pki init --dir {paths.root}` first.")
    key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{where}: {paths.ca_key} is not an EC private key.")
    cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    return key, cert


def init_ca(
    directory: Path | str,
    *,
    common_name: str = "mamori consortium CA",
    valid_days: int = 3650,
    overwrite: bool = False,
) -> PKIPaths:
    """Create the consortium CA in ``directory``.

    Parameters
    ----------
    directory : Path or str
        The PKI directory (created with mode 0700).
    common_name : str, default="mamori consortium CA"
        Subject common name of the CA certificate.
    valid_days : int, default=3650
        Validity of the CA certificate.
    overwrite : bool, default=False
        Replace an existing CA (every certificate it signed must then be reissued and every
        member must receive the new ``ca.crt``).

    Returns
    -------
    PKIPaths
        The paths of the directory.

    Raises
    ------
    ConfigError
        If a CA already exists and ``overwrite`` is False, or ``valid_days`` < 1.
    """
    paths = PKIPaths(Path(directory))
    if valid_days < 1:
        raise ConfigError(f"init_ca: valid_days must be >= 1, got {valid_days}.")
    if paths.ca_key.exists() and not overwrite:
        raise ConfigError(
            f"init_ca: a CA already exists in {paths.root}; pass overwrite=True (--force) to replace it."
        )
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)
    key = ec.generate_private_key(_CURVE)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    _write_private(paths.ca_key, _pem_key(key))
    _write_private(paths.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
    if not paths.members.exists():
        _write_private(paths.members, b"{}\n")
    logger.info("consortium CA created in %s", paths.root)
    return paths


def issue_server_cert(
    directory: Path | str,
    *,
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    valid_days: int = 397,
) -> PKIPaths:
    """Issue (or rotate) the coordinator's TLS certificate, signed by the consortium CA.

    Parameters
    ----------
    directory : Path or str
        The PKI directory holding the CA.
    hosts : tuple of str, default=("127.0.0.1", "localhost")
        Subject alternative names: IP addresses become ``IPAddress`` entries, the others ``DNSName``.
        Members must reach the coordinator under one of them.
    valid_days : int, default=397
        Validity of the certificate. Issuing again replaces key and certificate (rotation); the
        coordinator picks them up at its next start.

    Returns
    -------
    PKIPaths
        The paths of the directory.

    Raises
    ------
    ConfigError
        If there is no CA, ``hosts`` is empty or ``valid_days`` < 1.
    """
    paths = PKIPaths(Path(directory))
    if not hosts:
        raise ConfigError("issue_server_cert: hosts is empty; give at least one host name or IP address.")
    if valid_days < 1:
        raise ConfigError(f"issue_server_cert: valid_days must be >= 1, got {valid_days}.")
    ca_key, ca_cert = _load_ca(paths, "issue_server_cert")
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    key = ec.generate_private_key(_CURVE)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=valid_days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )
    _write_private(paths.server_key, _pem_key(key))
    _write_private(paths.server_cert, cert.public_bytes(serialization.Encoding.PEM))
    logger.info("coordinator certificate issued for %s in %s", ", ".join(hosts), paths.root)
    return paths


def key_fingerprint(public_key_line: str | bytes) -> str:
    """SHA-256 fingerprint of an OpenSSH EC public key.

    Parameters
    ----------
    public_key_line : str or bytes
        The OpenSSH public key (``ecdsa-sha2-nistp384 AAAA... comment``).

    Returns
    -------
    str
        ``"SHA256:"`` followed by the hex digest of the key's DER SubjectPublicKeyInfo.

    Raises
    ------
    ConfigError
        If the text is not an OpenSSH EC public key.
    """
    data = public_key_line.encode() if isinstance(public_key_line, str) else public_key_line
    try:
        key = serialization.load_ssh_public_key(data.strip())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"key_fingerprint: not an OpenSSH public key ({exc}).") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError(
            f"key_fingerprint: expected an EC (NIST curve) public key, got {type(key).__name__}; "
            "Flower's SuperNode authentication needs EC keys - make one with `mamori pki issue`."
        )
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def issue_node_key(out_dir: Path | str, name: str, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Make a member's node key pair (EC P-384, OpenSSH encoding).

    Parameters
    ----------
    out_dir : Path or str
        Where to write ``<name>.key`` (the private key, stays at the member) and ``<name>.pub``.
    name : str
        The node name.
    overwrite : bool, default=False
        Replace an existing pair (key rotation: register the new ``.pub``, revoke the old one).

    Returns
    -------
    tuple of Path
        ``(private_key_path, public_key_path)``.

    Raises
    ------
    ConfigError
        If the name is invalid or the pair exists and ``overwrite`` is False.
    """
    _check_name(name, "issue_node_key")
    out = Path(out_dir)
    private_path, public_path = out / f"{name}.key", out / f"{name}.pub"
    if private_path.exists() and not overwrite:
        raise ConfigError(f"issue_node_key: {private_path} exists; pass overwrite=True (--force) to rotate it.")
    key = ec.generate_private_key(_CURVE)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    _write_private(private_path, private)
    _write_private(public_path, public + f" mamori-node:{name}\n".encode())
    logger.info("node key pair for %s written to %s", name, out)
    return private_path, public_path


def load_members(directory: Path | str) -> dict[str, MemberKey]:
    """Read the member registry of a PKI directory.

    Parameters
    ----------
    directory : Path or str
        The PKI directory.

    Returns
    -------
    dict of str to MemberKey
        The members by node name (empty if there is no registry yet).

    Raises
    ------
    ConfigError
        If ``members.json`` is not valid.
    """
    paths = PKIPaths(Path(directory))
    if not paths.members.exists():
        return {}
    try:
        raw = json.loads(paths.members.read_text(encoding="utf-8"))
        return {name: MemberKey(**entry) for name, entry in raw.items()}
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"load_members: {paths.members} is not a valid member registry ({exc}).") from exc


def list_members(directory: Path | str) -> list[MemberKey]:
    """The registry's members sorted by name.

    Parameters
    ----------
    directory : Path or str
        The PKI directory.

    Returns
    -------
    list of MemberKey
        All members, active and revoked.
    """
    return [m for _, m in sorted(load_members(directory).items())]


def _save_members(paths: PKIPaths, members: dict[str, MemberKey]) -> None:
    data = {name: vars(m) for name, m in sorted(members.items())}
    _write_private(paths.members, (json.dumps(data, indent=2) + "\n").encode())


def register_node_key(directory: Path | str, name: str, public_key_path: Path | str) -> MemberKey:
    """Add (or replace) a member's public key in the registry.

    Parameters
    ----------
    directory : Path or str
        The PKI directory.
    name : str
        The node name.
    public_key_path : Path or str
        The member's ``.pub`` file (OpenSSH EC public key).

    Returns
    -------
    MemberKey
        The new, active entry. Replacing a key (rotation) makes the old one unknown.

    Raises
    ------
    ConfigError
        If the name or key is invalid, or the key is registered under another name.
    """
    _check_name(name, "register_node_key")
    paths = PKIPaths(Path(directory))
    line = Path(public_key_path).read_text(encoding="utf-8").strip()
    fingerprint = key_fingerprint(line)
    members = load_members(paths.root)
    for other in members.values():
        if other.fingerprint == fingerprint and other.name != name:
            raise ConfigError(
                f"register_node_key: the key in {public_key_path} is already registered for {other.name!r}; "
                "each node needs its own key pair."
            )
    entry = MemberKey(
        name=name, public_key=line, fingerprint=fingerprint, status="active", registered_at=_now().isoformat()
    )
    members[name] = entry
    _write_private(paths.nodes_dir / f"{name}.pub", (line + "\n").encode())
    _save_members(paths, members)
    logger.info("member %s registered (%s)", name, fingerprint)
    return entry


def revoke_node(directory: Path | str, name: str) -> MemberKey:
    """Mark a member's key revoked.

    The coordinator unregisters revoked keys from the SuperLink at its next start or
    ``sync_members``, after which that SuperNode is refused.

    Parameters
    ----------
    directory : Path or str
        The PKI directory.
    name : str
        The node name.

    Returns
    -------
    MemberKey
        The revoked entry.

    Raises
    ------
    ConfigError
        If no member has that name.
    """
    paths = PKIPaths(Path(directory))
    members = load_members(paths.root)
    if name not in members:
        known = ", ".join(sorted(members)) or "none"
        raise ConfigError(f"revoke_node: no member {name!r} in {paths.members} (known: {known}).")
    old = members[name]
    entry = MemberKey(
        name=old.name, public_key=old.public_key, fingerprint=old.fingerprint, status="revoked",
        registered_at=old.registered_at, revoked_at=_now().isoformat(),
    )
    members[name] = entry
    _save_members(paths, members)
    logger.info("member %s revoked (%s)", name, old.fingerprint)
    return entry
