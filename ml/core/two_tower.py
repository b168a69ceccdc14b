"""The Two-Tower model: a user tower and an item tower whose L2-normalised outputs meet in a dot product.

Model and training are kept apart: this module holds the config, the towers and how their inputs are
read; the losses, the loop and the engine's component that fits and serves them live in ``ml.core.train``,
which imports this one.

Inputs of each tower (each optional, concatenated, then the seed's MLP):
- user: dense user features (d_u), a user id embedding, and the mean embedding of the user's history items;
- item: dense item features (d_i) and an item id embedding.

The default config is the one that measured best on validation data carved from the ml-100k training split
(see ``TwoTowerConfig``); ``TwoTowerConfig.seed()`` is the seed's model exactly (dense features only, BCE on
sampled negatives, MLP head scoring), kept selectable because it is what the platform started from.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .data import EngineError, InteractionData

MIN_INTERACTIONS = 500
WEIGHTS_FILE = "weights.pt"
EMBEDDING_CHUNK = 1024  # rows embedded per step after fit: bounds the towers' activations in memory


@dataclass
class TwoTowerConfig:
    """Architecture, loss, scoring and training settings; the defaults are the best measured on validation.

    NDCG@10 on validation carved from the ml-100k training split (ratings >= 4, per-user 80/20, seed 0), each
    line the default with one change (standard error about 0.008):

    default (history + item ids + features, id_dim 128)      0.212
    id_dim 64 / 256                                          0.206 / 0.206
    user id embedding added / instead of the history         0.204 / 0.205
    no features (item ids and history only)                  0.205
    dropout 0.1 / 0.3                                        0.201 / 0.199
    temperature 0.05 (id_dim 64) / 0.15                      0.202 / 0.205
    one hidden layer [256] (id_dim 64) / embedding_dim 64    0.200 / 0.204
    batch 1024 / lr 2e-3 / 45 epochs                         0.207 / 0.211 / 0.212
    the seed preset (popularity scores 0.118)                0.124
    the seed preset's towers ranked by dot product           0.004
    its dot-product top 50 re-ranked by its head             0.012

    On the test split (tools/offline_eval.py defaults) the default scored 0.301 / 0.293 / 0.298 for split
    seeds 0 / 1 / 2 (BM25 item-KNN 0.288 at seed 0), the seed preset 0.164.
    """

    # Widths of the dense feature inputs. 20 / 15 are the platform spec's; fit() replaces them with the
    # widths of the data it is given (0 when the data has no features of that side).
    user_feature_dim: int = 20
    item_feature_dim: int = 15
    embedding_dim: int = 128  # width of each tower's L2-normalised output
    hidden_dims: list[int] = field(default_factory=lambda: [256, 128])  # the seed's tower widths
    dropout: float = 0.2
    id_dim: int = 128  # width of the id and history embeddings fed into the towers (64 and 256 measured worse)
    use_item_ids: bool = True  # item tower reads an embedding learnt per item row
    # User tower inputs. The history (mean embedding of the user's items) scores as well as a per-user id on
    # validation and lets new interactions count without retraining (user_scores); an id adds nothing.
    use_history: bool = True
    use_user_ids: bool = False
    loss: str = "softmax"  # "softmax": in-batch softmax with logQ correction; "bce": sampled negatives + head
    scoring: str = "dot"  # "dot": cosine of the towers' outputs; "head": the MLP head's probability
    temperature: float = 0.1  # softmax logits are cosine / temperature
    num_negatives: int = 4  # uniformly sampled negatives per positive (loss "bce")
    epochs: int = 30  # about 1 s each on ml-100k on a 2-core CPU; 45 scored no better
    batch_size: int = 2048  # large batches: more in-batch negatives and fewer, cheaper steps on a CPU
    lr: float = 1e-3
    weight_decay: float = 1e-5
    lr_patience: int = 3  # ReduceLROnPlateau: epochs without a better validation loss before lr is cut
    lr_factor: float = 0.1
    early_stopping_patience: int = 10  # epochs without a better validation loss before training stops
    val_fraction: float = 0.2  # share of interactions held out for the validation loss
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"

    def __post_init__(self) -> None:
        if self.loss not in ("softmax", "bce"):
            raise EngineError(f"unknown loss {self.loss!r}; expected 'softmax' or 'bce'")
        if self.scoring not in ("dot", "head"):
            raise EngineError(f"unknown scoring {self.scoring!r}; expected 'dot' or 'head'")
        if self.scoring == "head" and self.loss != "bce":
            raise EngineError("scoring 'head' needs loss 'bce': only that loss trains the head")
        self.hidden_dims = list(self.hidden_dims)

    @property
    def has_head(self) -> bool:
        return self.loss == "bce"

    @classmethod
    def seed(cls) -> TwoTowerConfig:
        """The seed's model: dense features only, BCE with sampled negatives, MLP head scoring."""
        return cls(use_item_ids=False, use_user_ids=False, use_history=False, loss="bce", scoring="head",
                   batch_size=256)

    @classmethod
    def production(cls) -> TwoTowerConfig:
        """The default model trained longer and wider, for a GPU worker."""
        return cls(epochs=50, lr=5e-4, batch_size=1024, embedding_dim=256)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> TwoTowerConfig:
        return cls(**values)


class Tower(nn.Module):
    """The seed's tower: [Linear -> ReLU -> Dropout -> BatchNorm] per hidden width -> Linear -> L2Normalize."""

    def __init__(self, in_dim: int, hidden_dims: list[int], out_dim: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden_dims:
            layers += [nn.Linear(in_dim, width), nn.ReLU(), nn.Dropout(dropout), nn.BatchNorm1d(width)]
            in_dim = width
        layers.append(nn.Linear(in_dim, out_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, in_dim) -> (B, out_dim), unit length
        return nn.functional.normalize(self.mlp(x), dim=-1)


class Head(nn.Module):
    """The seed's prediction head: Concat(user, item) -> Linear(64) -> ReLU -> Dropout -> Linear(1) (a logit)."""

    def __init__(self, embedding_dim: int, dropout: float):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * embedding_dim, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, 1))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # (B, D), (B, D) -> (B,) logits; the seed's Sigmoid is applied by the loss and by scoring
        return self.mlp(torch.cat([users, items], dim=-1)).squeeze(-1)


@dataclass
class UserBatch:
    """A batch of users as the user tower reads them; histories are given per distinct user."""

    rows: torch.Tensor  # (B,) user rows
    features: torch.Tensor | None  # (B, d_u)
    history_items: torch.Tensor | None  # (H,) item rows of the distinct users' histories, concatenated
    history_offsets: torch.Tensor | None  # (U,) where each distinct user's history starts in history_items
    history_counts: torch.Tensor | None  # (U,) history lengths
    distinct: torch.Tensor | None  # (B,) position of each batch user among the distinct users
    leave_out: torch.Tensor | None = None  # (B,) the target item, dropped from that user's history (training)


class TwoTowerModel(nn.Module):
    def __init__(self, config: TwoTowerConfig, n_users: int, n_items: int):
        super().__init__()
        c = config
        self.user_ids = nn.Embedding(n_users, c.id_dim) if c.use_user_ids else None
        self.item_ids = nn.Embedding(n_items, c.id_dim) if c.use_item_ids else None
        self.history = nn.EmbeddingBag(n_items, c.id_dim, mode="sum") if c.use_history else None
        for table in (self.user_ids, self.item_ids, self.history):
            if table is not None:
                nn.init.normal_(table.weight, std=0.1)
        user_in = c.user_feature_dim + c.id_dim * (int(c.use_user_ids) + int(c.use_history))
        item_in = c.item_feature_dim + c.id_dim * int(c.use_item_ids)
        if user_in == 0 or item_in == 0:
            raise EngineError("a tower has no input: give features, or enable id or history inputs")
        self.user_tower = Tower(user_in, c.hidden_dims, c.embedding_dim, c.dropout)
        self.item_tower = Tower(item_in, c.hidden_dims, c.embedding_dim, c.dropout)
        self.head = Head(c.embedding_dim, c.dropout) if c.has_head else None

    def user_embedding(self, batch: UserBatch) -> torch.Tensor:
        # -> (B, embedding_dim)
        parts = [] if batch.features is None else [batch.features]
        if self.user_ids is not None:
            parts.append(self.user_ids(batch.rows))
        if self.history is not None:
            parts.append(self.history_mean(batch))
        return self.user_tower(torch.cat(parts, dim=-1))

    def history_mean(self, batch: UserBatch) -> torch.Tensor:
        # Sum once per distinct user, then take the target out per example: (B, id_dim)
        if self.history is None or batch.history_counts is None or batch.distinct is None:
            raise EngineError("this Two-Tower reads no history (use_history is off), or the batch carries none")
        sums = self.history(batch.history_items, batch.history_offsets)[batch.distinct]
        counts = batch.history_counts[batch.distinct].to(sums.dtype)
        if batch.leave_out is not None:
            sums = sums - self.history.weight[batch.leave_out]
            counts = counts - 1
        return sums / counts.clamp(min=1).unsqueeze(-1)

    def head_logits(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # (B, D), (B, D) -> (B,): only a model trained with loss "bce" has the head
        if self.head is None:
            raise EngineError("this Two-Tower has no head: only loss 'bce' trains one")
        return self.head(users, items)

    def item_embedding(self, rows: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        # (B,), (B, d_i) -> (B, embedding_dim)
        parts = [] if features is None else [features]
        if self.item_ids is not None:
            parts.append(self.item_ids(rows))
        return self.item_tower(torch.cat(parts, dim=-1))


class TowerInputs:
    """What the towers read, as tensors on one device: the features and each user's history."""

    def __init__(self, data: InteractionData, history: sp.csr_matrix, device: torch.device):
        self.device = device
        self.user_features = _tensor(data.user_features, device)  # (n_users, d_u) or None
        self.item_features = _tensor(data.item_features, device)  # (n_items, d_i) or None
        history = history.tocsr()
        self.history_indptr = torch.from_numpy(history.indptr.astype(np.int64)).to(device)  # (n_users + 1,)
        self.history_indices = torch.from_numpy(history.indices.astype(np.int64)).to(device)  # (nnz,)

    def users(self, rows: torch.Tensor, leave_out: torch.Tensor | None = None) -> UserBatch:
        distinct_rows, distinct = torch.unique(rows, return_inverse=True)
        starts = self.history_indptr[distinct_rows]
        counts = self.history_indptr[distinct_rows + 1] - starts
        offsets = torch.cumsum(counts, 0) - counts
        # positions of every history entry of the distinct users: start + 0..count-1 per user
        within = torch.arange(int(counts.sum()), device=self.device) - offsets.repeat_interleave(counts)
        items = self.history_indices[starts.repeat_interleave(counts) + within]
        features = None if self.user_features is None else self.user_features[rows]
        return UserBatch(rows, features, items, offsets, counts, distinct, leave_out)

    def item_features_of(self, rows: torch.Tensor) -> torch.Tensor | None:
        return None if self.item_features is None else self.item_features[rows]


def resolve_device(name: str) -> torch.device:
    """"auto" is CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise EngineError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def _tensor(array: np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    return None if array is None else torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)
