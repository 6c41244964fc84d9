"""A small torch MLP with the estimator contract of mamori.models (and its torch module in ``network_``)."""

from __future__ import annotations

import numpy as np
import torch


class TorchMLP:
    """MLP n_features-16-1 trained with Adam; the FederatedEstimator contract plus ``network_``."""

    def __init__(self, hidden: int = 16, learning_rate: float = 0.01, seed: int = 0) -> None:
        self.hidden = hidden
        self.learning_rate = learning_rate
        self.seed = seed

    def init_weights(self, n_features: int) -> TorchMLP:
        torch.manual_seed(self.seed)
        self.network_ = torch.nn.Sequential(
            torch.nn.Linear(n_features, self.hidden), torch.nn.ReLU(), torch.nn.Linear(self.hidden, 1)
        )
        return self

    def get_weights(self) -> list[np.ndarray]:
        return [p.detach().cpu().numpy().copy() for p in self.network_.state_dict().values()]

    def set_weights(self, weights: list[np.ndarray]) -> TorchMLP:
        keys = list(self.network_.state_dict())
        self.network_.load_state_dict({k: torch.as_tensor(np.asarray(w)) for k, w in zip(keys, weights, strict=True)})
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        with torch.no_grad():
            return self.network_(torch.as_tensor(np.asarray(X, dtype=np.float32))).reshape(-1).double().numpy()

    def fit_local(self, X, y, epochs, proximal_mu=0.0, reference_weights=None):  # type: ignore[no-untyped-def]  # noqa: N803
        opt = torch.optim.Adam(self.network_.parameters(), lr=self.learning_rate)
        Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))  # noqa: N806
        yt = torch.as_tensor(np.asarray(y, dtype=np.float32))
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(epochs):
            perm = torch.randperm(len(Xt), generator=g)
            for i in range(0, len(Xt), 64):
                b = perm[i : i + 64]
                opt.zero_grad()
                loss = torch.nn.functional.binary_cross_entropy_with_logits(self.network_(Xt[b]).reshape(-1), yt[b])
                loss.backward()
                opt.step()
        return self

    def fit(self, X, y):  # type: ignore[no-untyped-def]  # noqa: N803
        self.init_weights(np.asarray(X).shape[1])
        return self.fit_local(X, y, epochs=20)
