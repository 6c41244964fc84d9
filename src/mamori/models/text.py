"""Message and URL text: hashed word and character n-grams, and the classifier that reads them.

No vocabulary is learnt, so every consortium member turns the same text into the same columns without sharing
a single message: the feature space is fixed by the hash widths and seed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
import polars as pl
from sklearn.feature_extraction.text import HashingVectorizer

from mamori.errors import ConfigError
from mamori.features import hash_ngrams
from mamori.models.classifier import AttackClassifier

__all__ = ["MessageClassifier", "TextFeaturizer"]

logger = logging.getLogger(__name__)

_URL = re.compile(r"https?://|www\.|\b[a-z0-9-]+\.(com|net|org|co\.uk|biz|info|ly|io|jp)\b", re.IGNORECASE)
_PHONE = re.compile(r"\b0?\d{5,}\b")
_MONEY = re.compile(r"[£$€¥]|\b\d+p\b|\bpounds?\b|\bcash\b", re.IGNORECASE)
_META = ("meta_len", "meta_digits", "meta_upper", "meta_urls", "meta_phones", "meta_money", "meta_exclaim")


class TextFeaturizer:
    """Turn messages (SMS, e-mail subjects, URLs) into fixed-width float32 vectors.

    Parameters
    ----------
    word_buckets : int, default=4096
        Width of the hashed word unigram + bigram block.
    char_buckets : int, default=4096
        Width of the hashed character 3-5-gram block (lower-cased bytes).
    seed : int, default=0
        Seed of the character hash; every member must use the same.

    Notes
    -----
    Counts are ``log1p``-damped and each block is L2-normalised per row; seven message statistics follow
    (length, digit and upper-case shares, URLs, phone-like numbers, money words, exclamation marks), scaled to
    about [0, 1]. Stateless: ``fit`` does nothing and exists for the scikit-learn contract.
    """

    def __init__(self, word_buckets: int = 4096, char_buckets: int = 4096, seed: int = 0) -> None:
        self.word_buckets = word_buckets
        self.char_buckets = char_buckets
        self.seed = seed

    def _check(self) -> None:
        if self.word_buckets < 1 or self.char_buckets < 1:
            raise ConfigError(
                f"TextFeaturizer: word_buckets and char_buckets must be >= 1; got {self.word_buckets}, "
                f"{self.char_buckets}."
            )

    def feature_names(self) -> tuple[str, ...]:
        """Return the column names.

        Returns
        -------
        tuple of str
            ``word_0000``..., ``char_0000``..., then the message statistics.
        """
        return (
            *(f"word_{i:04d}" for i in range(self.word_buckets)),
            *(f"char_{i:04d}" for i in range(self.char_buckets)),
            *_META,
        )

    def fit(self, texts: Sequence[str | None], y: object = None) -> TextFeaturizer:
        """Do nothing (the featurizer is stateless).

        Parameters
        ----------
        texts : sequence of str
            Ignored.
        y : ignored
            Present for the scikit-learn contract.

        Returns
        -------
        TextFeaturizer
            ``self``.
        """
        self._check()
        return self

    def transform(self, texts: Sequence[str | None]) -> np.ndarray:
        """Vectorise messages.

        Parameters
        ----------
        texts : sequence of str or None
            One message per row; None counts as empty.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(texts), word_buckets + char_buckets + 7)``, float32.
        """
        self._check()
        clean = ["" if t is None else str(t) for t in texts]
        words = HashingVectorizer(
            n_features=self.word_buckets,
            ngram_range=(1, 2),
            alternate_sign=False,
            norm=None,
            lowercase=True,
            token_pattern=r"(?u)\b\w+\b",
        ).transform(clean)
        word_block = np.log1p(words.toarray().astype(np.float32))
        chars = hash_ngrams(
            pl.Series([t.lower() for t in clean], dtype=pl.String), self.char_buckets, (3, 4, 5), self.seed
        )
        char_block = np.log1p(chars)
        for block in (word_block, char_block):
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            block /= np.where(norms > 0, norms, 1.0)
        meta = np.zeros((len(clean), len(_META)), dtype=np.float32)
        for i, t in enumerate(clean):
            n = max(len(t), 1)
            meta[i] = (
                np.log1p(len(t)) / 6.0,
                sum(c.isdigit() for c in t) / n,
                sum(c.isupper() for c in t) / n,
                min(len(_URL.findall(t)), 3) / 3.0,
                min(len(_PHONE.findall(t)), 3) / 3.0,
                min(len(_MONEY.findall(t)), 3) / 3.0,
                min(t.count("!"), 5) / 5.0,
            )
        return np.concatenate([word_block, char_block, meta], axis=1).astype(np.float32)

    def fit_transform(self, texts: Sequence[str | None], y: object = None) -> np.ndarray:
        """``fit`` then ``transform``.

        Parameters
        ----------
        texts : sequence of str
            Messages.
        y : ignored
            Present for the scikit-learn contract.

        Returns
        -------
        numpy.ndarray
            As :meth:`transform`.
        """
        return self.fit(texts).transform(texts)

    def get_params(self, deep: bool = True) -> dict[str, object]:
        """Return the constructor parameters.

        Parameters
        ----------
        deep : bool, default=True
            Ignored.

        Returns
        -------
        dict
            Parameter name to value.
        """
        return {"word_buckets": self.word_buckets, "char_buckets": self.char_buckets, "seed": self.seed}


class MessageClassifier(AttackClassifier):
    """Spam / phishing message (or URL) classifier over :class:`TextFeaturizer` vectors.

    An :class:`~mamori.models.AttackClassifier` with defaults suited to wide, sparse, L2-normalised text
    vectors: one narrow hidden layer, a higher learning rate, no dropout. ``decision_function`` returns
    logits; it trains federatedly like any mamori detector (``get_weights`` / ``set_weights`` / ``fit_local``).

    Parameters
    ----------
    hidden_layers : tuple of int, default=(32,)
        Hidden widths; ``()`` gives logistic regression.
    dropout : float, default=0.0
        Dropout after each hidden layer.
    learning_rate : float, default=3e-3
        Learning rate of the optimiser.
    weight_decay : float, default=1e-5
        Weight decay (L2) of the optimiser.
    epochs : int, default=10
        Epochs of ``fit``.
    batch_size : int, default=64
        Mini-batch size.
    pos_weight : float or "balanced" or None, default="balanced"
        As :class:`~mamori.models.AttackClassifier`.
    max_pos_weight : float, default=100.0
        Cap of the balanced weight.
    seed : int, default=0
        Seed of initialisation and shuffling.
    n_threads : int or None, default=1
        PyTorch threads.
    optimizer : {"adam", "sgd"}, default="adam"
        Optimiser of each training call; ``"sgd"`` drifts less in federated rounds over skewed members (see
        :class:`~mamori.models.AttackClassifier`).
    momentum : float, default=0.0
        SGD momentum.
    """

    def __init__(
        self,
        hidden_layers: tuple[int, ...] = (32,),
        dropout: float = 0.0,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-5,
        epochs: int = 10,
        batch_size: int = 64,
        pos_weight: float | str | None = "balanced",
        max_pos_weight: float = 100.0,
        seed: int = 0,
        n_threads: int | None = 1,
        optimizer: str = "adam",
        momentum: float = 0.0,
    ) -> None:
        super().__init__(
            hidden_layers=hidden_layers,
            dropout=dropout,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            epochs=epochs,
            batch_size=batch_size,
            pos_weight=pos_weight,
            max_pos_weight=max_pos_weight,
            seed=seed,
            n_threads=n_threads,
            optimizer=optimizer,
            momentum=momentum,
        )
