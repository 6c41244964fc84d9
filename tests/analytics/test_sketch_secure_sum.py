from __future__ import annotations

import numpy as np
import pytest

from mamori.analytics import ConsortiumKey, CountMinSketch, MaskingMember, SecureSumCoordinator, secure_sum
from mamori.analytics.secure_sum import default_threshold
from mamori.errors import ConfigError, FederationError

KEY = ConsortiumKey(b"k" * 32)


def test_key_rejects_short_secret_and_hides_itself() -> None:
    with pytest.raises(ConfigError, match="16 bytes"):
        ConsortiumKey(b"short")
    assert "k" * 8 not in repr(KEY)
    assert ConsortiumKey.from_hex(KEY.hex()).digest("ip", "1.2.3.4") == KEY.digest("ip", "1.2.3.4")


@pytest.mark.parametrize(("text", "message"), [
    ("abcd", "has 2 bytes .4 hex digits.; it needs at least 16 bytes"),  # was reported as "not a hex string"
    ("zz" * 20, "is not a hex string"),
])
def test_a_bad_hex_key_says_what_is_wrong_without_repeating_it(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        ConsortiumKey.from_hex(text)
    assert text[:4] not in str(caught.value)  # the key is a secret: not even its first digits in a log


def test_keyed_cells_depend_on_key_and_kind() -> None:
    other = ConsortiumKey(b"x" * 32)
    a = KEY.cells("ip", ["203.0.113.7"], 2**16, 4)
    assert not np.array_equal(a, other.cells("ip", ["203.0.113.7"], 2**16, 4))
    assert not np.array_equal(a, KEY.cells("username", ["203.0.113.7"], 2**16, 4))


def test_count_min_never_underestimates_and_is_linear() -> None:
    rng = np.random.default_rng(0)
    values = [f"10.0.{i // 256}.{i % 256}" for i in rng.integers(0, 5000, 3000)]
    s = CountMinSketch(512, 4).add(KEY, "ip", values)
    uniq, counts = np.unique(values, return_counts=True)
    est = s.query(KEY, "ip", list(uniq))
    assert np.all(est >= counts)
    a = CountMinSketch(512, 4).add(KEY, "ip", values[:1000])
    b = CountMinSketch(512, 4).add(KEY, "ip", values[1000:])
    assert np.array_equal(a.flat() + b.flat(), s.flat())
    back = CountMinSketch.from_flat(s.flat(), 512, 4)
    assert np.array_equal(back.query(KEY, "ip", list(uniq)), est)


def test_presence_sketches_sum_to_bank_counts() -> None:
    banks = [["a", "b"], ["a", "c"], ["a", "b", "d"]]
    total = sum(CountMinSketch(4096, 4).add(KEY, "ip", b, presence=True).flat() for b in banks)
    s = CountMinSketch.from_flat(total, 4096, 4)
    assert list(s.query(KEY, "ip", ["a", "b", "c", "d", "e"])) == [3, 2, 1, 1, 0]


def test_secure_sum_is_exact_including_negative_noise() -> None:
    rng = np.random.default_rng(1)
    vectors = [rng.integers(-50, 1000, 10_000) for _ in range(5)]
    assert np.array_equal(secure_sum(vectors, round_id=3), np.sum(vectors, axis=0))
    with pytest.raises(FederationError, match="at least 2"):
        secure_sum(vectors[:1])


def _world(ip_at_bank0: str, ip_at_bank1: str) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Three banks; which of two IPs bank 0 and bank 1 saw is swapped between worlds."""
    lists = [[ip_at_bank0, "198.51.100.1"], [ip_at_bank1, "198.51.100.1"], ["192.0.2.9", "198.51.100.1"]]
    vectors = [CountMinSketch(1024, 4).add(KEY, "ip", v, presence=True).flat() for v in lists]
    members = [MaskingMember(i) for i in range(3)]
    pubs = {m.index: m.public_key() for m in members}
    channels = {m.index: m.channel_key() for m in members}
    for m in members:
        m.agree(pubs, channels)
    coordinator = SecureSumCoordinator()
    total = secure_sum(vectors, round_id=7, coordinator=coordinator, members=members)
    return total, coordinator.received


def test_coordinator_cannot_tell_which_bank_contributed_an_ip() -> None:
    # World A: bank 0 saw 203.0.113.7 and bank 1 saw 203.0.113.8; world B: the other way round.
    total_a, seen_a = _world("203.0.113.7", "203.0.113.8")
    total_b, seen_b = _world("203.0.113.8", "203.0.113.7")
    # 1. The only unmasked thing the coordinator obtains, the sum, is identical in both worlds.
    assert np.array_equal(total_a, total_b)
    # 2. What it received from each bank is masked: unlike the plaintext 0/1 sketch, it is spread over the whole
    #    uint32 range, and bank 0's vector at the cells of either IP carries no 0/1 pattern in either world.
    target_cells = KEY.cells("ip", ["203.0.113.7", "203.0.113.8"], 1024, 4)
    flat_idx = (np.arange(4) * 1024 + target_cells).reshape(-1)
    for seen in (seen_a, seen_b):
        v = seen[0].astype(np.float64)
        assert abs(v.mean() / 2**32 - 0.5) < 0.05
        assert np.mean(seen[0] <= 1) < 0.01
        assert np.all(seen[0][flat_idx] > 1)
    # 3. Without the consortium key it cannot even locate an IP's cells: another key maps it elsewhere.
    guess = ConsortiumKey(b"g" * 32).cells("ip", ["203.0.113.7"], 1024, 4)
    assert not np.array_equal(guess, KEY.cells("ip", ["203.0.113.7"], 1024, 4))


def test_secure_sum_rejects_mismatched_lengths() -> None:
    with pytest.raises(FederationError, match="different lengths"):
        SecureSumCoordinator().total({0: np.zeros(3, np.uint32), 1: np.zeros(4, np.uint32)})


def _members(n: int) -> list[MaskingMember]:
    members = [MaskingMember(i) for i in range(n)]
    pubs = {m.index: m.public_key() for m in members}
    channels = {m.index: m.channel_key() for m in members}
    for m in members:
        m.agree(pubs, channels)
    return members


def test_sum_over_survivors_is_exact_when_a_member_drops() -> None:
    rng = np.random.default_rng(2)
    vectors = [rng.integers(-20, 500, 5_000) for _ in range(5)]
    members = _members(5)
    # Bank 3 shares its secrets (so everyone masks against it), then vanishes without sending its vector.
    total = secure_sum(vectors, round_id=1, members=members, drop_before_masking={3})
    assert np.array_equal(total, np.sum([v for i, v in enumerate(vectors) if i != 3], axis=0))
    # Bank 3's mask key is now known to the coordinator: the survivors refuse its shares until it re-keys.
    with pytest.raises(FederationError, match="rekey"):
        secure_sum(vectors, round_id=2, members=members)
    members[3].rekey()
    pubs = {m.index: m.public_key() for m in members}
    channels = {m.index: m.channel_key() for m in members}
    for m in members:
        m.agree(pubs, channels)
    # Bank 1 sends its vector, then vanishes before unmasking: its input is in the sum, the others unmask it.
    total = secure_sum(vectors, round_id=2, members=members, drop_before_unmasking={1})
    assert np.array_equal(total, np.sum(vectors, axis=0))
    # Too many drop-outs (3 of 5, threshold 3): the round is abandoned, never unmasked wrongly.
    with pytest.raises(FederationError, match="threshold"):
        secure_sum(vectors, round_id=3, members=_members(5), drop_before_masking={0, 1, 2})


def test_coordinator_learns_nothing_per_bank_after_a_dropout() -> None:
    # Three surviving banks; which of two IPs banks 0 and 1 saw is swapped between worlds; bank 3 drops.
    def world(ip0: str, ip1: str) -> tuple[np.ndarray, dict[int, np.ndarray], list[MaskingMember]]:
        lists = [[ip0, "198.51.100.1"], [ip1, "198.51.100.1"], ["192.0.2.9"], ["192.0.2.10"]]
        vectors = [CountMinSketch(1024, 4).add(KEY, "ip", v, presence=True).flat() for v in lists]
        members = _members(4)
        coordinator = SecureSumCoordinator()
        total = secure_sum(vectors, round_id=5, coordinator=coordinator, members=members, drop_before_masking={3})
        return total, coordinator.received, members

    total_a, seen_a, members = world("203.0.113.7", "203.0.113.8")
    total_b, _, _ = world("203.0.113.8", "203.0.113.7")
    assert np.array_equal(total_a, total_b)
    assert set(seen_a) == {0, 1, 2}
    cells = (np.arange(4) * 1024 + KEY.cells("ip", ["203.0.113.7", "203.0.113.8"], 1024, 4)).reshape(-1)
    for v in seen_a.values():
        assert abs(v.astype(np.float64).mean() / 2**32 - 0.5) < 0.05
        assert np.all(v[cells] > 1)
    # An honest member answers the unmasking request once per round: a coordinator that first calls bank 0 a
    # survivor (to get its self-mask) cannot then call it dropped (to get its mask key) and strip both masks.
    with pytest.raises(FederationError, match="already unmasked"):
        members[1].reveal(5, {1, 2}, 2)


def test_member_refuses_tampered_shares_and_small_survivor_sets() -> None:
    members = _members(3)
    blobs = members[0].share(0, 2)
    tampered = bytes([blobs[1][0] ^ 1]) + blobs[1][1:]
    with pytest.raises(FederationError, match="do not decrypt"):
        members[1].receive(0, {0: tampered})
    with pytest.raises(FederationError, match="fewer than the threshold"):
        members[2].reveal(0, {2}, 2)
    assert default_threshold(5) == 3 and default_threshold(2) == 2
