"""SecAgg+'s masks come from AES-256-CTR over the whole secret, not Flower's 32-bit-seeded Mersenne Twister."""

from __future__ import annotations

import numpy as np
import pytest

import mamori.federation.secagg  # noqa: F401 - importing mamori's SecAgg+ code installs the generator
from mamori.federation.secagg_masks import secure_pseudo_rand_gen


def _flower_pseudo_rand_gen(seed: bytes, num_range: int, dimensions_list: list[tuple[int, ...]]) -> list[np.ndarray]:
    # Flower 1.41's own generator, as written in flwr.common.secure_aggregation.secaggplus_utils (kept here because
    # the installed module now points at mamori's)
    seed32 = 0
    for i in range(0, len(seed), 4):
        seed32 ^= int.from_bytes(seed[i : i + 4], "little")
    gen = np.random.RandomState(seed32)
    return [gen.randint(0, num_range - 1, dim, dtype=np.int64) for dim in dimensions_list]


def test_two_secrets_flower_would_fold_to_one_seed_give_different_masks() -> None:
    # Prepare: two 32-byte secrets whose 32-bit XOR folds are equal (the second swaps two 4-byte words)
    a = bytes(range(32))
    b = a[4:8] + a[0:4] + a[8:]
    assert a != b
    # Execute
    flower = [_flower_pseudo_rand_gen(s, 2**42, [(1000,)])[0] for s in (a, b)]
    ours = [secure_pseudo_rand_gen(s, 2**42, [(1000,)])[0] for s in (a, b)]
    # Assert: Flower's masks coincide (one of 2**32 per secret); mamori's depend on every bit of the secret
    np.testing.assert_array_equal(flower[0], flower[1])
    assert not np.array_equal(ours[0], ours[1])
    # ...and are the same for the same secret, as both ends of a pairwise mask need
    np.testing.assert_array_equal(ours[0], secure_pseudo_rand_gen(a, 2**42, [(1000,)])[0])


def test_masks_are_uniform_int64_of_the_requested_shapes() -> None:
    masks = secure_pseudo_rand_gen(b"k" * 32, 2**42, [(300, 40), (), (7,)])
    assert [m.shape for m in masks] == [(300, 40), (), (7,)]
    assert all(m.dtype == np.int64 and m.min() >= 0 and m.max() < 2**42 for m in masks)
    values = masks[0].astype(np.float64) / 2**42
    spread = 5 / np.sqrt(values.size)  # five standard errors of a uniform mean and of a uniform variance
    assert abs(values.mean() - 0.5) < spread * 12**-0.5
    assert abs(values.var() - 1 / 12) < spread * 0.075
    with pytest.raises(ValueError, match="power of two"):
        secure_pseudo_rand_gen(b"k", 3 * 2**40, [(2,)])


def test_flowers_client_mod_and_server_workflow_use_it() -> None:
    from flwr.client.mod import secaggplus_mod
    from flwr.server.workflow import SecAggPlusWorkflow

    # what the mask and unmask code actually reads: the functions' own module globals
    assert secaggplus_mod.__globals__["pseudo_rand_gen"] is secure_pseudo_rand_gen
    assert SecAggPlusWorkflow.unmask_stage.__globals__["pseudo_rand_gen"] is secure_pseudo_rand_gen

