"""Bench settings: local epochs per round default by kind of dataset; explicit values win."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mamori.bench import BenchConfig
from mamori.federation import lr_factor


def test_local_epochs_default_depends_on_the_kind_of_dataset() -> None:
    config = BenchConfig()
    assert config.epochs_per_round(text=False) == 2
    assert config.epochs_per_round(text=True) == 5
    assert BenchConfig(local_epochs=3).epochs_per_round(text=True) == 3


def test_unknown_anomaly_score_or_fusion_is_rejected() -> None:
    assert BenchConfig().anomaly_score == "top" and BenchConfig().hybrid_fusion == "sum"
    with pytest.raises(ValidationError):
        BenchConfig(anomaly_score="median")
    with pytest.raises(ValidationError):
        BenchConfig(hybrid_fusion="mean")


def test_server_optimizer_settings_are_checked_before_any_training() -> None:
    default = BenchConfig()
    assert default.server_step(text=False)["server_optimizer"] == "fedavg"
    assert default.server_step(text=True) == {"server_optimizer": "fedavg", "server_momentum": None, "server_lr": None}
    explicit = BenchConfig(server_optimizer="fedavg")
    assert explicit.server_step(text=True)["server_optimizer"] == "fedavg"
    assert BenchConfig(server_optimizer="fedadam", server_lr=0.01).server_step(text=False)["server_lr"] == 0.01
    with pytest.raises(ValidationError, match="need an explicit server_optimizer"):
        BenchConfig(server_momentum=0.9)
    with pytest.raises(ValidationError, match="need a server optimizer"):
        BenchConfig(server_optimizer="fedavg", server_lr=0.5)
    with pytest.raises(ValidationError):
        BenchConfig(server_optimizer="sgd")


def test_autoencoder_defaults_depend_on_the_dataset() -> None:
    default = BenchConfig()
    assert default.autoencoder_step("nsl-kdd", text=False) == (0.3, 4)
    assert default.autoencoder_step("csic", text=False) == (0.0, 2)
    assert BenchConfig(local_epochs=3).autoencoder_step("nsl-kdd", text=False) == (0.3, 6)
    assert BenchConfig(ae_noise=0.0, ae_local_epochs=2).autoencoder_step("nsl-kdd", text=False) == (0.0, 2)
    with pytest.raises(ValidationError):
        BenchConfig(ae_noise=-0.1)


def test_federated_classifier_member_defaults_by_dataset() -> None:
    default = BenchConfig()
    sms = default.client_step(text=True, dataset="sms")
    assert sms == {
        "optimizer": "sgd",
        "learning_rate": 0.3,
        "batch_size": None,
        "local_epochs": 1,
        "rounds": 100,
        "algorithm": "plain",
        "lr_schedule": "constant",
        "lr_floor": 0.1,
        "tail_average": 0,
    }
    csic = default.client_step(text=False, dataset="csic")
    assert csic == {
        "optimizer": "adam",
        "learning_rate": 2e-3,
        "batch_size": 1024,
        "local_epochs": 1,
        "rounds": 40,
        "algorithm": "scaffold",
        "lr_schedule": "cosine",
        "lr_floor": 0.5,
        "tail_average": 10,
    }
    # An explicit optimiser or learning rate wins over the tuned one.
    assert BenchConfig(client_lr=1e-3).client_step(text=False, dataset="csic")["learning_rate"] == 1e-3
    assert BenchConfig(client_optimizer="adam").client_step(text=False, dataset="csic")["learning_rate"] is None
    assert BenchConfig(client_algorithm="plain").client_step(text=False, dataset="csic")["algorithm"] == "plain"
    nsl = default.client_step(text=False, dataset="nsl-kdd")
    assert nsl == {
        "optimizer": "adam",
        "learning_rate": None,
        "batch_size": None,
        "local_epochs": 2,
        "rounds": 20,
        "algorithm": "plain",
        "lr_schedule": "constant",
        "lr_floor": 0.1,
        "tail_average": 0,
    }
    assert default.server_step(text=False, dataset="csic") == {
        "server_optimizer": "fedavgm",
        "server_momentum": 0.9,
        "server_lr": 1.0,
    }
    plain = BenchConfig(server_optimizer="fedavg")
    assert plain.server_step(text=False, dataset="csic")["server_optimizer"] == "fedavg"
    explicit = BenchConfig(client_optimizer="adam", client_local_epochs=5, client_batch_size=64)
    assert explicit.client_step(text=True, dataset="sms") == {
        "optimizer": "adam",
        "learning_rate": None,
        "batch_size": 64,
        "local_epochs": 5,
        "rounds": 20,
        "algorithm": "plain",
        "lr_schedule": "constant",
        "lr_floor": 0.1,
        "tail_average": 0,
    }
    assert (
        BenchConfig(client_algorithm="scaffold").client_step(text=False, dataset="nsl-kdd")["algorithm"] == "scaffold"
    )
    assert BenchConfig(client_optimizer="sgd", client_lr=0.1).client_step(text=False)["learning_rate"] == 0.1
    with pytest.raises(ValueError, match="explicit client_lr"):
        BenchConfig(client_optimizer="sgd").client_step(text=False)
    with pytest.raises(ValueError, match="does not divide"):
        BenchConfig(rounds=3, client_local_epochs=4).client_step(text=True, dataset="sms")
    with pytest.raises(ValidationError):
        BenchConfig(client_optimizer="rmsprop")
    with pytest.raises(ValidationError):
        BenchConfig(client_algorithm="feddyn")


def test_tail_average_defaults_to_ten_rounds_for_csic_only() -> None:
    assert BenchConfig().client_step(text=False, dataset="csic")["tail_average"] == 10
    assert BenchConfig().client_step(text=False, dataset="nsl-kdd")["tail_average"] == 0
    assert BenchConfig().client_step(text=True, dataset="sms")["tail_average"] == 0
    assert BenchConfig(tail_average=0).client_step(text=False, dataset="csic")["tail_average"] == 0
    assert BenchConfig(tail_average=5).client_step(text=False, dataset="nsl-kdd")["tail_average"] == 5
    with pytest.raises(ValidationError):
        BenchConfig(tail_average=-1)


def test_member_learning_rate_schedule_defaults_and_factors() -> None:
    # The tuned cosine decay belongs to csic's tuned optimiser; explicit settings win.
    assert (
        BenchConfig(client_lr_schedule="linear", client_lr_floor=0.5).client_step(text=False, dataset="csic")[
            "lr_schedule"
        ]
        == "linear"
    )
    step = BenchConfig(client_lr_schedule="constant").client_step(text=False, dataset="csic")
    assert step["lr_schedule"] == "constant"
    assert BenchConfig(client_optimizer="adam").client_step(text=False, dataset="csic")["lr_schedule"] == "constant"
    assert BenchConfig(client_lr_floor=0.3).client_step(text=False, dataset="csic")["lr_floor"] == 0.3
    with pytest.raises(ValidationError):
        BenchConfig(client_lr_schedule="exponential")
    with pytest.raises(ValidationError):
        BenchConfig(client_lr_floor=0.0)
    # Round 1 trains at the full rate, the last round at the floor; cosine stays above linear in between.
    for shape in ("cosine", "linear"):
        assert lr_factor(shape, 1, 40, 0.1) == pytest.approx(1.0)
        assert lr_factor(shape, 40, 40, 0.1) == pytest.approx(0.1)
        factors = [lr_factor(shape, r, 40, 0.1) for r in range(1, 41)]
        assert all(a > b for a, b in zip(factors, factors[1:], strict=False))
    assert lr_factor("cosine", 20, 40, 0.1) > lr_factor("linear", 20, 40, 0.1) > 0.5
    assert lr_factor("cosine", 0, 40, 0.1) == 1.0  # outside 1..rounds: clipped
    assert lr_factor("constant", 30, 40, 0.1) == 1.0
    assert lr_factor("cosine", 1, 1, 0.1) == 1.0
    with pytest.raises(ValueError, match="schedule must be"):
        lr_factor("step", 2, 40, 0.1)
