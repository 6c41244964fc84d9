"""Secure summation of integer vectors with dropout recovery (the SecAgg protocol of Bonawitz et al., CCS 2017).

Every member holds two X25519 key pairs: a *mask* key whose pairwise agreements seed the pairwise masks, and a
*channel* key whose pairwise agreements encrypt (AES-GCM) the Shamir shares members send each other through the
coordinator. Per round each member

1. draws a fresh self-mask seed ``b_u`` and Shamir-shares (threshold ``t``) both ``b_u`` and its mask private key
   among all members, each share encrypted to its recipient (:meth:`MaskingMember.share`);
2. sends ``x_u + PRG(b_u) + sum_{v>u} PRG(s_uv) - sum_{v<u} PRG(s_uv)`` modulo 2**32 (:meth:`MaskingMember.mask`);
3. once the coordinator names the members whose vectors arrived (the survivors), reveals for every survivor its
   share of that survivor's ``b`` and for every dropped member its share of that member's mask key -- never both
   for the same member, and only once per round (:meth:`MaskingMember.reveal`).

With ``t`` reveals the coordinator rebuilds the survivors' self-masks and the dropped members' mask keys, removes
the survivors' self-masks and the dropped members' pairwise masks, and obtains the exact sum over the survivors
(:meth:`SecureSumCoordinator.total`). Each masked vector alone is uniformly random to it; the self-mask is what
keeps a survivor's input hidden even when the coordinator (falsely) declares it dropped to learn its mask key,
because an honest member then never reveals its ``b`` for that round. The channel keys are never revealed, so a
dropped member's recovered mask key does not open the shares other members sent it.

Why not Flower's SecAgg+ workflow (``mamori.federation.secagg``): it quantises *float* parameters with clipping
and stochastic rounding, so integer counts come out exact only for carefully matched ranges, and it runs as a
workflow inside a Flower ServerApp round; these sums are hourly, exact, 1.6 M-cell integer sketches computed by the
analytics engine. The construction here is the same (SecAgg+ only replaces the complete graph of pairs by a sparse
one, which matters for hundreds of clients, not for a consortium of tens of banks).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Mapping, Sequence

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from mamori.errors import FederationError

__all__ = ["MaskingMember", "SecureSumCoordinator", "default_threshold", "secure_sum"]

_MOD = 2**32
#: Shamir shares live in GF(2**521 - 1) (a Mersenne prime), large enough for a 32-byte secret as one element.
_PRIME = 2**521 - 1
_SHARE_BYTES = 66

#: One revealed share: ("self" | "key", x, y). "self" shares a survivor's self-mask seed, "key" a dropped
#: member's mask private key.
Share = tuple[str, int, int]


def default_threshold(n_members: int) -> int:
    """Return the default Shamir threshold: a strict majority of the round's members, at least 2.

    A majority means no minority of colluding members can, with the coordinator, rebuild anyone's secrets,
    while the round survives up to ``n - t`` dropouts.

    Parameters
    ----------
    n_members : int
        Members of the round.

    Returns
    -------
    int
    """
    return max(2, n_members // 2 + 1)


def _prg(seed: bytes, round_id: int, size: int) -> np.ndarray:
    # AES-256-CTR keystream: a cryptographic PRG. numpy's PCG64 is not one, and a masked sparse sketch exposes
    # the masks of its zero cells, from which a PCG state could be recovered.
    key = hashlib.sha256(seed + round_id.to_bytes(8, "little")).digest()
    enc = Cipher(algorithms.AES(key), modes.CTR(b"\x00" * 16)).encryptor()
    return np.frombuffer(enc.update(bytes(4 * size)), dtype="<u4")  # read-only view; callers only add it


def _pair_seed(shared: bytes) -> bytes:
    return hashlib.sha256(b"mamori-secure-sum" + shared).digest()


def _split(secret: bytes, xs: Sequence[int], threshold: int) -> dict[int, int]:
    """Shamir-split ``secret`` into shares at the points ``xs`` (any ``threshold`` of them rebuild it)."""
    coeffs = [int.from_bytes(secret, "big")] + [secrets.randbelow(_PRIME) for _ in range(threshold - 1)]
    out = {}
    for x in xs:
        y = 0
        for c in reversed(coeffs):
            y = (y * x + c) % _PRIME
        out[x] = y
    return out


def _combine(shares: Mapping[int, int], length: int = 32) -> bytes:
    """Rebuild a Shamir secret from shares (x -> y) by Lagrange interpolation at 0."""
    secret = 0
    for xi, yi in shares.items():
        num, den = 1, 1
        for xj in shares:
            if xj != xi:
                num = num * xj % _PRIME
                den = den * (xj - xi) % _PRIME
        secret = (secret + yi * num * pow(den, -1, _PRIME)) % _PRIME
    if secret >= 2 ** (8 * length):
        raise FederationError("secure sum: shares do not rebuild a secret (too few, or from different rounds)")
    return secret.to_bytes(length, "big")


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


class MaskingMember:
    """One member's side of the secure sum (pairwise masks, self-mask, Shamir shares for dropout recovery).

    Parameters
    ----------
    index : int
        The member's position in the round (distinct per member, >= 0). Its Shamir point is ``index + 1``.

    Notes
    -----
    A member whose mask key was revealed because it dropped out must call :meth:`rekey` and take part in a new
    key agreement before its next round; the survivors stop masking against a revealed key by themselves.
    """

    def __init__(self, index: int) -> None:
        if index < 0:
            raise FederationError(f"MaskingMember: index must be >= 0; got {index}")
        self.index = index
        self._seeds: dict[int, bytes] = {}
        self._channels: dict[int, bytes] = {}
        self._self_seeds: dict[int, bytes] = {}
        self._held: dict[int, dict[int, tuple[int, int]]] = {}
        self._revealed: set[int] = set()
        self.rekey()

    def rekey(self) -> None:
        """Draw new mask and channel key pairs (forgetting every agreement); run :meth:`agree` again after."""
        self._private = X25519PrivateKey.generate()
        self._channel = X25519PrivateKey.generate()
        self._seeds.clear()
        self._channels.clear()

    def public_key(self) -> bytes:
        """Return the X25519 public mask key to publish through the coordinator.

        Returns
        -------
        bytes
        """
        return _raw(self._private.public_key())

    def channel_key(self) -> bytes:
        """Return the X25519 public key peers use to encrypt the shares they send this member.

        Returns
        -------
        bytes
        """
        return _raw(self._channel.public_key())

    def agree(self, peers: Mapping[int, bytes], channels: Mapping[int, bytes] | None = None) -> None:
        """Derive the pairwise mask seeds (and share-encryption keys) from the peers' public keys.

        Parameters
        ----------
        peers : mapping of int to bytes
            Index -> public mask key of every member of the round (own entry ignored).
        channels : mapping of int to bytes or None, default=None
            Index -> public channel key; without it this member can mask but not take part in dropout recovery.
        """
        for j, pub in peers.items():
            if j != self.index:
                self._seeds[j] = _pair_seed(self._private.exchange(X25519PublicKey.from_public_bytes(pub)))
        for j, pub in (channels or {}).items():
            if j != self.index:
                shared = self._channel.exchange(X25519PublicKey.from_public_bytes(pub))
                self._channels[j] = hashlib.sha256(b"mamori-secure-sum-channel" + shared).digest()

    def _aad(self, round_id: int, sender: int, receiver: int) -> bytes:
        return b"mamori-share" + round_id.to_bytes(8, "little") + sender.to_bytes(4, "little") + \
            receiver.to_bytes(4, "little")

    def share(self, round_id: int, threshold: int) -> dict[int, bytes]:
        """Draw this round's self-mask seed and Shamir-share it and the mask private key among all members.

        Parameters
        ----------
        round_id : int
            The round (a seed and its shares are never reused across rounds).
        threshold : int
            Shares needed to rebuild (at least 2, at most the number of members).

        Returns
        -------
        dict of int to bytes
            Peer index -> AES-GCM ciphertext for that peer (the coordinator routes them unread); this member
            keeps its own share.

        Raises
        ------
        FederationError
            When no channel keys were agreed, or ``threshold`` does not fit the number of members.
        """
        members = sorted({*self._channels, self.index})
        if not self._channels:
            raise FederationError(f"MaskingMember {self.index}: no channel keys agreed; pass `channels` to agree()")
        if not 2 <= threshold <= len(members):
            raise FederationError(f"MaskingMember {self.index}: threshold must be in [2, {len(members)}] for "
                                  f"{len(members)} members; got {threshold}")
        b = secrets.token_bytes(32)
        self._self_seeds[round_id] = b
        key = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        xs = [j + 1 for j in members]
        b_shares, key_shares = _split(b, xs, threshold), _split(key, xs, threshold)
        self._held.setdefault(round_id, {})[self.index] = (b_shares[self.index + 1], key_shares[self.index + 1])
        out = {}
        for j, channel in self._channels.items():
            plain = b_shares[j + 1].to_bytes(_SHARE_BYTES, "big") + key_shares[j + 1].to_bytes(_SHARE_BYTES, "big")
            nonce = hashlib.sha256(self._aad(round_id, self.index, j)).digest()[:12]
            out[j] = AESGCM(channel).encrypt(nonce, plain, self._aad(round_id, self.index, j))
        return out

    def receive(self, round_id: int, ciphertexts: Mapping[int, bytes]) -> None:
        """Store the shares peers sent this member for the round.

        Parameters
        ----------
        round_id : int
            The round.
        ciphertexts : mapping of int to bytes
            Sender index -> what that sender's :meth:`share` produced for this member.

        Raises
        ------
        FederationError
            When a ciphertext does not decrypt (tampered, misrouted or from another round).
        """
        held = self._held.setdefault(round_id, {})
        for sender, blob in ciphertexts.items():
            channel = self._channels.get(sender)
            if channel is None:
                raise FederationError(f"MaskingMember {self.index}: no keys agreed with member {sender} (a member "
                                      "whose mask key was revealed after a drop-out must rekey() and agree again)")
            aad = self._aad(round_id, sender, self.index)
            try:
                plain = AESGCM(channel).decrypt(hashlib.sha256(aad).digest()[:12], blob, aad)
            except InvalidTag as exc:
                raise FederationError(f"MaskingMember {self.index}: the shares from member {sender} for round "
                                      f"{round_id} do not decrypt (tampered or misrouted)") from exc
            held[sender] = (int.from_bytes(plain[:_SHARE_BYTES], "big"), int.from_bytes(plain[_SHARE_BYTES:], "big"))

    def mask(self, vector: np.ndarray, round_id: int) -> np.ndarray:
        """Return ``vector`` plus the round's pairwise masks (and self-mask, after :meth:`share`), modulo 2**32.

        Parameters
        ----------
        vector : numpy.ndarray
            Integer vector (negative entries allowed; they wrap).
        round_id : int
            Distinct per round so masks are never reused.

        Returns
        -------
        numpy.ndarray
            uint32 masked vector.
        """
        out = np.asarray(vector, dtype=np.int64).astype(np.uint32)
        held = self._held.get(round_id)
        for j, seed in self._seeds.items():
            if held is not None and j not in held:
                continue  # with dropout recovery, mask only against peers that shared their secrets this round
            m = _prg(seed, round_id, out.size)
            out = out + m if self.index < j else out - m
        b = self._self_seeds.get(round_id)
        if b is not None:
            out = out + _prg(b, round_id, out.size)
        return out

    def reveal(self, round_id: int, survivors: Collection[int], threshold: int) -> dict[int, Share]:
        """Answer the coordinator's unmasking request: self-mask shares of survivors, key shares of the dropped.

        Parameters
        ----------
        round_id : int
            The round.
        survivors : collection of int
            The members whose masked vectors the coordinator received.
        threshold : int
            The round's threshold; fewer survivors than this means the round is abandoned, not unmasked.

        Returns
        -------
        dict of int to Share
            Member index -> ("self", x, y) for a survivor or ("key", x, y) for a dropped member.

        Raises
        ------
        FederationError
            When asked twice for the same round (a coordinator asking again could collect both shares of one
            member) or with fewer survivors than ``threshold``.
        """
        if round_id in self._revealed:
            raise FederationError(f"MaskingMember {self.index}: round {round_id} was already unmasked; refusing to "
                                  "reveal again")
        alive = set(survivors)
        if len(alive) < threshold:
            raise FederationError(f"MaskingMember {self.index}: {len(alive)} survivors in round {round_id}, fewer "
                                  f"than the threshold {threshold}; the round cannot be unmasked")
        self._revealed.add(round_id)
        held = self._held.pop(round_id, {})
        self._self_seeds.pop(round_id, None)
        out: dict[int, Share] = {}
        for member, (b_share, key_share) in held.items():
            if member in alive:
                out[member] = ("self", self.index + 1, b_share)
            else:
                out[member] = ("key", self.index + 1, key_share)
                # That key is now known to the coordinator: never mask against it again (the member re-keys).
                self._seeds.pop(member, None)
                self._channels.pop(member, None)
        return out


class SecureSumCoordinator:
    """The coordinator's side: relays keys and shares, holds the masked vectors, returns only their sum.

    Attributes
    ----------
    received : dict of int to numpy.ndarray
        The masked vectors of the last round (kept for inspection by tests: with the reveals, this is all it
        ever sees).
    """

    def __init__(self) -> None:
        self.received: dict[int, np.ndarray] = {}

    def total(self, masked: Mapping[int, np.ndarray], *, round_id: int = 0,
              reveals: Mapping[int, Mapping[int, Share]] | None = None,
              public_keys: Mapping[int, bytes] | None = None, threshold: int = 2) -> np.ndarray:
        """Sum the masked vectors, removing self-masks and the masks of dropped members when ``reveals`` is given.

        Parameters
        ----------
        masked : mapping of int to numpy.ndarray
            Index -> masked uint32 vector of every member whose vector arrived (the survivors).
        round_id : int, default=0
            The round (the masks depend on it).
        reveals : mapping of int to mapping of int to Share or None, default=None
            Revealing member -> its :meth:`MaskingMember.reveal` answer. None: the members used no self-mask and
            none dropped (plain pairwise masking).
        public_keys : mapping of int to bytes or None, default=None
            Index -> public mask key of every member that sent its shares in the round (needed with ``reveals``);
            those absent from ``masked`` are the dropped ones.
        threshold : int, default=2
            Shares needed to rebuild a secret.

        Returns
        -------
        numpy.ndarray
            The sum over the survivors as int64 (values >= 2**31 read as negative: DP noise may push cells below 0).

        Raises
        ------
        FederationError
            When the vectors differ in length, or fewer than ``threshold`` members revealed.
        """
        sizes = {v.size for v in masked.values()}
        if len(sizes) != 1:
            raise FederationError(f"secure sum: masked vectors have different lengths {sorted(sizes)}")
        self.received = dict(masked)
        size = sizes.pop()
        acc = np.zeros(size, dtype=np.uint32)
        for v in masked.values():
            acc += v
        if reveals is not None:
            if len(reveals) < threshold:
                raise FederationError(f"secure sum round {round_id}: {len(reveals)} members revealed shares, the "
                                      f"threshold is {threshold}; the sum cannot be unmasked")
            keys = dict(public_keys or {})
            for u in masked:
                acc -= _prg(self._rebuild(reveals, u, "self", round_id, threshold), round_id, size)
            for d in sorted(set(keys) - set(masked)):
                private = X25519PrivateKey.from_private_bytes(self._rebuild(reveals, d, "key", round_id, threshold))
                for v in masked:
                    if v not in keys:
                        raise FederationError(f"secure sum round {round_id}: no public key of survivor {v}")
                    m = _prg(_pair_seed(private.exchange(X25519PublicKey.from_public_bytes(keys[v]))), round_id, size)
                    # Survivor v added +m towards a higher-numbered peer d and -m towards a lower one.
                    acc = acc - m if v < d else acc + m
        return acc.view(np.int32).astype(np.int64)

    @staticmethod
    def _rebuild(reveals: Mapping[int, Mapping[int, Share]], member: int, kind: str, round_id: int,
                 threshold: int) -> bytes:
        shares = {x: y for answer in reveals.values() if member in answer
                  for k, x, y in [answer[member]] if k == kind}
        if len(shares) < threshold:
            raise FederationError(f"secure sum round {round_id}: {len(shares)} '{kind}' shares of member {member}, "
                                  f"threshold {threshold}")
        return _combine(shares)


def secure_sum(vectors: Sequence[np.ndarray], round_id: int = 0,
               coordinator: SecureSumCoordinator | None = None,
               members: Sequence[MaskingMember] | None = None, *, threshold: int | None = None,
               drop_before_masking: Collection[int] = (), drop_before_unmasking: Collection[int] = ()) -> np.ndarray:
    """Run one in-process round with dropout recovery: share, mask, (drop-outs), reveal, unmask.

    Parameters
    ----------
    vectors : sequence of numpy.ndarray
        One integer vector per member, equal lengths, |sum| < 2**31.
    round_id : int, default=0
        Round number (fresh masks per round).
    coordinator : SecureSumCoordinator or None, default=None
        Reused coordinator (to inspect what it received); a new one when None.
    members : sequence of MaskingMember or None, default=None
        Members with keys (mask and channel) already agreed, reused across rounds; new ones when None.
    threshold : int or None, default=None
        Shamir threshold; :func:`default_threshold` of the number of members when None.
    drop_before_masking : collection of int, default=()
        Members (indices) that share their secrets, then vanish without sending a vector (simulated drop-out):
        their input is left out and their pairwise masks are removed with the survivors' help.
    drop_before_unmasking : collection of int, default=()
        Members that send their vector, then vanish before revealing: their input is in the sum.

    Returns
    -------
    numpy.ndarray
        The element-wise int64 sum over the members that sent a vector.

    Raises
    ------
    FederationError
        With fewer than 2 members, or when too few members remain to unmask.
    """
    if len(vectors) < 2:
        raise FederationError(f"secure sum needs at least 2 members; got {len(vectors)}")
    if members is None:
        members = [MaskingMember(i) for i in range(len(vectors))]
        keys = {m.index: m.public_key() for m in members}
        channels = {m.index: m.channel_key() for m in members}
        for m in members:
            m.agree(keys, channels)
    t = threshold or default_threshold(len(members))
    coordinator = coordinator or SecureSumCoordinator()
    public = {m.index: m.public_key() for m in members}
    inbox: dict[int, dict[int, bytes]] = {m.index: {} for m in members}
    for m in members:
        for peer, blob in m.share(round_id, t).items():
            inbox[peer][m.index] = blob  # routed through the coordinator, which cannot decrypt it
    for m in members:
        m.receive(round_id, inbox[m.index])
    gone = set(drop_before_masking)
    masked = {m.index: m.mask(v, round_id) for m, v in zip(members, vectors, strict=True) if m.index not in gone}
    if len(masked) < 2:
        raise FederationError(f"secure sum round {round_id}: {len(masked)} members sent a vector; need at least 2")
    gone |= set(drop_before_unmasking)
    reveals = {m.index: m.reveal(round_id, masked.keys(), t) for m in members if m.index not in gone}
    return coordinator.total(masked, round_id=round_id, reveals=reveals, public_keys=public, threshold=t)
