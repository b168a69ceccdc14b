"""Training the Two-Tower model (``ml.core.two_tower``, the pure model, imported here as nanoGPT's train.py
imports its model.py): the losses, the loop, and :class:`TwoTowerRecommender`, the engine's component that
fits the towers, precomputes item embeddings for serving, scores users and saves its artifact.

Two losses:
- ``InBatchSoftmax`` (the default): each positive (user, item) is scored against the batch's other items with
  a softmax over cosine / temperature. Items appear in batches in proportion to their popularity, so each
  logit is corrected by subtracting log(item frequency) (logQ); without it popular items are over-penalised
  and the ranking collapses (0.074 NDCG@10 on ml-100k validation, per docs/engine-notes.md). A user's other
  positives in the batch are masked rather than pushed down as negatives.
- ``SampledBce`` (the seed's): each positive against ``num_negatives`` uniformly sampled items, through the
  MLP head and a sigmoid.

The loop: Adam, ReduceLROnPlateau and early stopping on the loss of held-out validation interactions, the
best state restored at the end. While training, the history tower reads only the training interactions;
once trained, every interaction is history again, so held-out ones still shape the served embeddings.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from .base import ProgressCallback, Recommender, UserScores, UserState, load_artifact, save_artifact
from .data import EngineError, IdMap, InteractionData, fitted
from .two_tower import (
    EMBEDDING_CHUNK,
    MIN_INTERACTIONS,
    WEIGHTS_FILE,
    TowerInputs,
    TwoTowerConfig,
    TwoTowerModel,
    resolve_device,
)


@dataclass
class Examples:
    """Positive (user, item) pairs as training targets, on the training device."""

    users: torch.Tensor  # (N,) user rows
    items: torch.Tensor  # (N,) item rows
    weights: torch.Tensor  # (N,) interaction weights, mean 1 over the training examples
    in_history: bool  # whether each target is in its user's history input (and must be left out of it)

    def __len__(self) -> int:
        return len(self.users)

    def take(self, index: torch.Tensor) -> Examples:
        return Examples(self.users[index], self.items[index], self.weights[index], self.in_history)


def split_examples(matrix: sp.csr_matrix, val_fraction: float, seed: int,
                   device: torch.device) -> tuple[Examples, Examples, sp.csr_matrix]:
    """Random train / validation split of the interactions (the nonzeros of ``matrix``).

    Returns the training examples, the validation examples and the training interactions as a matrix: the
    histories the towers read while training. Validation targets are kept out of those histories, as a
    user's future items are at serving time; were they in, a user id embedding could memorise the full
    history and read each target off what is missing from it (measured: validation loss kept falling while
    NDCG fell to popularity's).
    """
    coo = matrix.tocoo()
    order = np.random.default_rng(seed).permutation(coo.nnz)
    n_val = int(round(coo.nnz * val_fraction))
    val, train = order[:n_val], order[n_val:]
    weights = coo.data.astype(np.float32) / coo.data[train].mean()

    def examples(index: np.ndarray, in_history: bool) -> Examples:
        users, items, weighted = (torch.from_numpy(a[index].astype(t)).to(device) for a, t in
                                  ((coo.row, np.int64), (coo.col, np.int64), (weights, np.float32)))
        return Examples(users, items, weighted, in_history)

    history = sp.csr_matrix((coo.data[train], (coo.row[train], coo.col[train])), shape=matrix.shape)
    return examples(train, True), examples(val, False), history


class InBatchSoftmax:
    """Softmax of each positive against the batch's distinct items, logQ-corrected."""

    def __init__(self, matrix: sp.csr_matrix, temperature: float, device: torch.device):
        counts = np.asarray((matrix > 0).sum(axis=0), dtype=np.float64).ravel()
        # log of each item's share of the positives: how often it turns up in a batch
        self.log_q = torch.from_numpy(np.log(np.maximum(counts, 1) / counts.sum()).astype(np.float32)).to(device)
        self.positives = (matrix > 0).tocsr()
        self.temperature = temperature

    def reseed(self, seed: int) -> None:
        """Nothing random to reseed: the batch supplies the negatives."""

    def __call__(self, model: TwoTowerModel, inputs: TowerInputs, batch: Examples) -> torch.Tensor:
        items, target = torch.unique(batch.items, return_inverse=True)  # (U,) distinct items, (B,) target column
        users = model.user_embedding(inputs.users(batch.users, leave_out=_leave_out(batch)))  # (B, D)
        candidates = model.item_embedding(items, inputs.item_features_of(items))  # (U, D)
        logits = users @ candidates.T / self.temperature - self.log_q[items]  # (B, U)
        other_positives = self._positive_mask(batch.users, items, logits.device)  # (B, U)
        other_positives[torch.arange(len(target), device=logits.device), target] = False
        logits = logits.masked_fill(other_positives, -math.inf)
        loss = F.cross_entropy(logits, target, reduction="none")  # (B,)
        return (loss * batch.weights).sum() / batch.weights.sum()

    def _positive_mask(self, users: torch.Tensor, items: torch.Tensor, device: torch.device) -> torch.Tensor:
        # (B, U) bool: is item u a positive of the batch's user b; scipy slices the few rows quickly
        distinct_users, rows = np.unique(users.cpu().numpy(), return_inverse=True)
        block = self.positives[distinct_users][:, items.cpu().numpy()].toarray()
        return torch.from_numpy(block[rows]).to(device)


class SampledBce:
    """The seed's loss: each positive and ``num_negatives`` uniform negatives through the head's sigmoid."""

    def __init__(self, n_items: int, num_negatives: int):
        self.n_items = n_items
        self.num_negatives = num_negatives
        self.generator = torch.Generator()

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def __call__(self, model: TwoTowerModel, inputs: TowerInputs, batch: Examples) -> torch.Tensor:
        k, device = self.num_negatives, batch.items.device
        negatives = torch.randint(self.n_items, (len(batch) * k,), generator=self.generator).to(device)
        users = batch.users.repeat(k + 1)  # (B * (k + 1),): the positives first, then k rounds of negatives
        items = torch.cat([batch.items, negatives])
        labels = torch.cat([torch.ones(len(batch), device=device), torch.zeros(len(negatives), device=device)])
        leave_out = batch.items.repeat(k + 1) if batch.in_history else None
        user_embeddings = model.user_embedding(inputs.users(users, leave_out=leave_out))
        item_embeddings = model.item_embedding(items, inputs.item_features_of(items))
        logits = model.head_logits(user_embeddings, item_embeddings)  # (B * (k + 1),)
        weights = batch.weights.repeat(k + 1)
        return (F.binary_cross_entropy_with_logits(logits, labels, reduction="none") * weights).sum() / weights.sum()


Loss = InBatchSoftmax | SampledBce


def train_two_tower(model: TwoTowerModel, inputs: TowerInputs, train: Examples, val: Examples,
                    matrix: sp.csr_matrix, config: TwoTowerConfig, *, seed: int,
                    progress: ProgressCallback | None = None) -> dict:
    """Fit ``model`` in place on the ``train`` examples, stopping on the ``val`` loss; returns per-epoch losses.

    ``inputs`` reads the training histories (``split_examples``); ``matrix`` holds every positive, which the
    softmax keeps from being used as a negative.
    """
    device = inputs.device
    loss_fn = (InBatchSoftmax(matrix, config.temperature, device) if config.loss == "softmax"
               else SampledBce(matrix.shape[1], config.num_negatives))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=config.lr_patience,
                                                           factor=config.lr_factor)
    shuffle = torch.Generator().manual_seed(seed)
    best_loss, best_state, best_epoch, epochs = math.inf, None, 0, []
    for epoch in range(1, config.epochs + 1):
        started, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
        train_loss = _train_epoch(model, inputs, train, loss_fn, optimizer, config.batch_size, shuffle, seed + epoch)
        val_loss = _validation_loss(model, inputs, val, loss_fn, config.batch_size, seed)
        scheduler.step(val_loss)
        if val_loss < best_loss:
            best_loss, best_state, best_epoch = val_loss, copy.deepcopy(model.state_dict()), epoch
        # lr: the rate this epoch trained at (ReduceLROnPlateau may lower it for the next one after the step
        # above); best_epoch: the epoch whose state the fit will keep, so far.
        info = {"algorithm": TwoTowerRecommender.name, "epoch": epoch, "epochs": config.epochs,
                "train_loss": train_loss, "val_loss": val_loss, "lr": lr, "best_epoch": best_epoch,
                "seconds": time.perf_counter() - started}
        epochs.append(info)
        if progress is not None:
            progress("epoch", info)
        if epoch - best_epoch >= config.early_stopping_patience:
            break
    if best_state is None:
        raise EngineError("Two-Tower training diverged: the validation loss was never finite; try a lower lr")
    model.load_state_dict(best_state)
    return {"epochs": epochs, "best_epoch": best_epoch, "best_val_loss": best_loss,
            "train_examples": len(train), "val_examples": len(val)}


def _leave_out(batch: Examples) -> torch.Tensor | None:
    return batch.items if batch.in_history else None


def _batches(n: int, batch_size: int, order: torch.Tensor) -> list[torch.Tensor]:
    # The last, partial batch is dropped when there are full ones: it would weigh a few examples as much as
    # a full batch, and BatchNorm cannot train on a batch of one. Shuffling gives every example its turn.
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def _train_epoch(model: TwoTowerModel, inputs: TowerInputs, train: Examples, loss_fn: Loss, optimizer,
                 batch_size: int, shuffle: torch.Generator, negative_seed: int) -> float:
    model.train()
    loss_fn.reseed(negative_seed)
    total, batches = 0.0, _batches(len(train), batch_size, torch.randperm(len(train), generator=shuffle))
    for index in batches:
        loss = loss_fn(model, inputs, train.take(index.to(train.users.device)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(batches)


@torch.no_grad()
def _validation_loss(model: TwoTowerModel, inputs: TowerInputs, val: Examples, loss_fn: Loss, batch_size: int,
                     seed: int) -> float:
    # The same batches (and, for BCE, the same negatives) every epoch, so epochs compare fairly
    model.eval()
    loss_fn.reseed(seed)
    batches = torch.arange(len(val), device=val.users.device).split(batch_size)
    losses = [loss_fn(model, inputs, val.take(index)).item() * len(index) for index in batches]
    return sum(losses) / len(val)


# ---------------------------------------------------------------- the recommender: fit, serve, save


class TwoTowerRecommender(Recommender):
    name = "two_tower"

    def __init__(self, config: TwoTowerConfig | None = None, seed: int = 0):
        self.config = config or TwoTowerConfig()
        self.seed = seed
        self.model: TwoTowerModel | None = None
        self.user_embeddings: np.ndarray | None = None  # (n_users, embedding_dim)
        self.item_embeddings: np.ndarray | None = None  # (n_items, embedding_dim)
        self.training_log: dict = {}  # per-epoch losses of the last fit

    def fit(self, data: InteractionData, *, progress: ProgressCallback | None = None) -> TwoTowerRecommender:
        _check_data(data)
        self.config = replace(
            self.config,
            user_feature_dim=0 if data.user_features is None else data.user_features.shape[1],
            item_feature_dim=0 if data.item_features is None else data.item_features.shape[1],
        )
        torch.manual_seed(self.seed)
        device = resolve_device(self.config.device)
        self.model = TwoTowerModel(self.config, data.n_users, data.n_items).to(device)
        train, val, history = split_examples(data.matrix, self.config.val_fraction, self.seed, device)
        if len(val) == 0:
            raise EngineError(f"val_fraction {self.config.val_fraction} leaves no interactions for validation")
        if progress is not None:  # a fit begins: whoever watches sees its epochs from 0
            progress("fit", {"algorithm": self.name, "unit": "epoch", "total": self.config.epochs})
        self.training_log = train_two_tower(self.model, TowerInputs(data, history, device), train, val, data.matrix,
                                            self.config, seed=self.seed, progress=progress)
        self.model = self.model.cpu().eval()
        self._remember_data(data)
        self._precompute(TowerInputs(data, data.matrix, torch.device("cpu")))
        return self

    @torch.no_grad()
    def _precompute(self, inputs: TowerInputs) -> None:
        model = fitted(self.model, self.name)
        n_users, n_items = len(fitted(self.user_ids, self.name)), len(fitted(self.item_ids, self.name))
        users = [model.user_embedding(inputs.users(rows)) for rows in _chunks(n_users)]
        items = [model.item_embedding(rows, inputs.item_features_of(rows)) for rows in _chunks(n_items)]
        self.user_embeddings = torch.cat(users).numpy()
        self.item_embeddings = torch.cat(items).numpy()

    def score(self, user_rows: np.ndarray) -> np.ndarray:
        return self._score_embeddings(fitted(self.user_embeddings, self.name)[self._check_rows(user_rows)])

    def linear_items(self) -> tuple[np.ndarray, None] | None:
        return (fitted(self.item_embeddings, self.name), None) if self.config.scoring == "dot" else None

    def user_scores(self, user: UserState) -> UserScores:
        if self.config.scoring == "dot":
            return super().user_scores(user)
        return UserScores.dense(self._score_embeddings(self._query(user)[None, :])[0])

    def _query(self, user: UserState) -> np.ndarray:
        """The user tower's embedding of the current history where the model can embed one (no user
        features needed), else the user's embedding as of training."""
        try:
            return self.history_embedding(user.history.indices, user.features)
        except EngineError:
            if user.row is None:
                raise
            return fitted(self.user_embeddings, self.name)[self._check_rows([user.row])[0]]

    def history_embedding(self, item_rows: np.ndarray, user_feature_row: np.ndarray | None = None) -> np.ndarray:
        """(embedding_dim,) the user tower's output for a history of item rows (and features)."""
        if self.model is None or self.item_ids is None:
            raise EngineError("the Two-Tower model is not fitted")
        if self.model.user_ids is not None:
            raise EngineError("this Two-Tower learns one embedding per known user; it cannot score a new history")
        item_rows = np.asarray(item_rows, dtype=np.int64)
        if item_rows.size and (item_rows.min() < 0 or item_rows.max() >= len(self.item_ids)):
            raise EngineError("item row out of range")
        features = None
        if self.config.user_feature_dim:
            if user_feature_row is None:
                raise EngineError(f"this model needs a user feature row of width {self.config.user_feature_dim}")
            features = np.asarray(user_feature_row, dtype=np.float32).reshape(1, -1)
            _check_features(features, "user", self.config.user_feature_dim)
        history = sp.csr_matrix((np.ones(len(item_rows), np.float32), item_rows, [0, len(item_rows)]),
                                shape=(1, len(self.item_ids)))
        one_user = InteractionData(IdMap(["new"]), self.item_ids, history, user_features=features)
        with torch.no_grad():
            user = self.model.user_embedding(TowerInputs(one_user, history, torch.device("cpu")).users(
                torch.zeros(1, dtype=torch.int64)))
        return user.numpy()[0]

    def _score_embeddings(self, users: np.ndarray) -> np.ndarray:
        # (n, D) user embeddings -> (n, n_items) scores
        if self.config.scoring == "dot":
            return (users @ fitted(self.item_embeddings, self.name).T).astype(np.float32)
        return self._head_scores(torch.from_numpy(users))

    @torch.no_grad()
    def _head_scores(self, users: torch.Tensor) -> np.ndarray:
        model = fitted(self.model, self.name)
        items = torch.from_numpy(fitted(self.item_embeddings, self.name))  # (n_items, D)
        out = np.empty((len(users), len(items)), dtype=np.float32)
        for n, user in enumerate(users):
            out[n] = torch.sigmoid(model.head_logits(user.expand(len(items), -1), items)).numpy()
        return out

    def save(self, path: Path) -> None:
        """The shared artifact plus the towers' weights.

        meta.json holds the config, id maps, metrics, fingerprint and training log; arrays.npz the embeddings
        that scoring reads; weights.pt the towers' state_dict, which embedding a current history needs.
        """
        if self.model is None:
            raise EngineError("the Two-Tower model is not fitted")
        meta = {**self._common_meta(self.config.to_json()), "seed": self.seed, "training": self.training_log}
        save_artifact(path, meta, {"user_embeddings": self.user_embeddings, "item_embeddings": self.item_embeddings})
        torch.save(self.model.state_dict(), Path(path) / WEIGHTS_FILE)

    @classmethod
    def load(cls, path: Path) -> TwoTowerRecommender:
        meta, arrays = load_artifact(path)
        model = cls(TwoTowerConfig.from_json(meta["config"]), seed=meta["seed"])
        model._restore_common(meta)
        model.training_log = meta["training"]
        model.user_embeddings, model.item_embeddings = arrays["user_embeddings"], arrays["item_embeddings"]
        model.model = TwoTowerModel(model.config, len(fitted(model.user_ids, cls.name)),
                                    len(fitted(model.item_ids, cls.name)))
        weights = torch.load(Path(path) / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        model.model.load_state_dict(weights)
        model.model.eval()
        return model


def _check_data(data: InteractionData) -> None:
    n = data.matrix.nnz
    if n < MIN_INTERACTIONS:
        raise EngineError(f"the Two-Tower needs at least {MIN_INTERACTIONS} interactions to learn from; got {n}")
    if data.user_features is not None:
        _check_features(data.user_features, "user", data.user_features.shape[1], rows=data.n_users)
    if data.item_features is not None:
        _check_features(data.item_features, "item", data.item_features.shape[1], rows=data.n_items)


def _check_features(features: np.ndarray, side: str, width: int, rows: int | None = None) -> None:
    if features.ndim != 2 or features.shape[1] != width or (rows is not None and features.shape[0] != rows):
        raise EngineError(f"{side} features have shape {features.shape}; expected ({rows or 'n'}, {width})")
    if not np.isfinite(features).all():
        raise EngineError(f"{side} features contain NaN or infinite values")


def _chunks(n: int) -> list[torch.Tensor]:
    return list(torch.arange(n).split(EMBEDDING_CHUNK))
