"""Schema-driven features: dense arrays for the towers, sparse content terms for the content model.

A :class:`FeatureSpec` names each column's kind, as a bundle's ``features.json`` does::

    {"users": {"age": "numeric", "occupation": "categorical"},
     "items": {"title": "text", "year": "numeric", "genres": "multi"}}

========== ============================================== ==============================================
kind       dense columns (``user_features``/``item_features``) content terms (``*_content``)
========== ============================================== ==============================================
numeric    1: standardised with the fitted mean / std;     ``col:lo-hi``, the fitted quantile bin
           empty values take the mean (0)
categorical one-hot over the ``max_categories`` most        ``col:value``
           frequent values (rarer ones: all zeros)
multi      multi-hot (``a|b|c``) over the ``max_multi``    ``col:value`` for each value
           most frequent values
text       none (too wide for a dense tower input)         ``text:token`` (TF-IDF; vocabulary capped)
========== ============================================== ==============================================

Terms live in one vocabulary fitted on the items (plus users' structured terms no item has, so reasons
can count them); a user column with the same name and kind as an
item column (or any text) lands on the same terms, so a user's declared profile can match items.
An explicit NaN is an error (EngineError), an empty value is "missing".

The platform's own spec (fixed transforms, nothing to fit, so training and serving agree):

**User features, 20 dimensions** (:func:`platform_user_features`)

== ===================== =====================================================
#  name                  value
== ===================== =====================================================
0  role_developer        1 if role is developer
1  role_founder          1 if role is founder
2  role_investor         1 if role is investor
3  years_experience      min(years, 30) / 30
4  skills_count          min(len(skills), 20) / 20
5  industries_count      min(len(industries), 10) / 10 (industry preferences)
6  remote_remote         remote_preference == "remote"
7  remote_hybrid         remote_preference == "hybrid"
8  remote_onsite         remote_preference == "onsite"
9  salary_min            desired salary, log10(1 + x) / 7
10 salary_max            desired salary, log10(1 + x) / 7
11 check_size_min        investor ticket (a founder: the ticket their raising rounds take), log10(1 + x) / 7
12 check_size_max        investor ticket (a founder: ditto), log10(1 + x) / 7
13 stage_idea            preferred_stages contains idea
14 stage_pre_seed        ... pre_seed
15 stage_seed            ... seed
16 stage_series_a        ... series_a
17 stage_growth          ... series_b or later
18 has_bio               1 if bio is not empty
19 profile_completeness  share of skills, industries, remote, bio, salary/check filled
== ===================== =====================================================

**Item features, 20 dimensions** (:func:`platform_item_features`; positions carry their startup's fields)

== ========================== =====================================================
#  name                       value
== ========================== =====================================================
0  type_position              item_type == "position"
1  type_startup               item_type == "startup"
2  required_skills_count      min(len(required_skills), 20) / 20
3  salary_min                 log10(1 + x) / 7
4  salary_max                 log10(1 + x) / 7
5  remote_remote              remote == "remote"
6  remote_hybrid              remote == "hybrid"
7  remote_onsite              remote == "onsite"
8  years_experience_required  min(years, 30) / 30
9  team_size                  log1p(team_size) / log1p(1000)
10 funding_raised             log10(1 + x) / 7
11 funding_goal               log10(1 + x) / 7 (the round being raised; 0 when not raising)
12 stage_idea                 stage == idea (an investor: preferred_stages contains idea)
13 stage_pre_seed             stage == pre_seed
14 stage_seed                 stage == seed
15 stage_series_a             stage == series_a
16 stage_growth               stage is series_b or later
17 industries_count           min(len(industries), 5) / 5
18 open_positions             log1p(n) / log1p(50)
19 description_length         log1p(words) / log1p(1000)
== ========================== =====================================================

Platform content terms (:func:`platform_content`): ``skill:``, ``industry:``, ``remote:``, ``salary:``
(bands), ``stage:``, ``check:`` (ticket bands) and ``text:`` (bio / title / description words); the
content model's reasons name them.
"""
from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .data import EngineError, cells_of, unit_rows

KINDS = ("numeric", "categorical", "multi", "text")
TEXT_NAMESPACE = "text"
_TOKEN = re.compile(r"[a-z][a-z0-9+#]+")
_STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its", "of",
    "on", "or", "that", "the", "this", "to", "was", "we", "were", "will", "with", "you", "your", "our", "their",
    "they", "not", "but", "if", "into", "about", "over", "under", "than", "then", "so", "such", "can", "may",
    "all", "any",
})


@dataclass
class FeatureSpec:
    """Each column's kind, per side."""

    users: dict[str, str] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for side, columns in (("users", self.users), ("items", self.items)):
            for column, kind in columns.items():
                if kind not in KINDS:
                    raise EngineError(f"features spec: {side}.{column} has kind {kind!r}; known kinds: {KINDS}")

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> FeatureSpec:
        unknown = set(spec) - {"users", "items"}
        if unknown:
            raise EngineError(f"features spec: unknown sections {sorted(unknown)}; expected 'users' and 'items'")
        return cls(users=dict(spec.get("users") or {}), items=dict(spec.get("items") or {}))

    @classmethod
    def from_json(cls, path: Path) -> FeatureSpec:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise EngineError(f"cannot read the features spec {path}: {exc}") from exc


@dataclass
class FeatureConfig:
    max_categories: int = 32  # one-hot width cap per categorical column (zip codes would explode)
    max_multi: int = 64  # multi-hot width cap per multi-valued column
    numeric_bins: int = 4  # quantile bins that turn a numeric column into content terms
    max_terms: int = 20000  # content vocabulary cap, most frequent terms kept


# ---------------------------------------------------------------- parsing values


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; stop words and bare numbers dropped (they match everything or nothing)."""
    return [t for t in _TOKEN.findall(str(text).lower()) if t not in _STOP_WORDS]


def _values(raw: Any) -> list[str]:
    """A multi-valued cell: a list, or an ``a|b|c`` string; blanks dropped, lower-cased."""
    if raw is None:
        return []
    parts = raw if isinstance(raw, list | tuple | set) else str(raw).split("|")
    return [str(p).strip().lower() for p in parts if str(p).strip()]


def _number(raw: Any, column: str) -> float | None:
    """A numeric cell: None when missing, EngineError when NaN or not a number."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise EngineError(f"feature {column!r}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise EngineError(f"feature {column!r} is NaN or infinite")
    return value


def _category(raw: Any) -> str | None:
    text = "" if raw is None else str(raw).strip().lower()
    return text or None


# ---------------------------------------------------------------- one table


@dataclass
class _Column:
    """What was fitted for one column; plain lists and floats so it round-trips through JSON."""

    name: str
    kind: str
    mean: float = 0.0
    std: float = 1.0
    edges: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)

    def width(self) -> int:
        return {"numeric": 1, "categorical": len(self.categories), "multi": len(self.categories)}.get(self.kind, 0)


def _fit_column(name: str, kind: str, cells: list[Any], config: FeatureConfig) -> _Column:
    column = _Column(name, kind)
    if kind == "numeric":
        values = np.asarray([v for v in (_number(c, name) for c in cells) if v is not None], dtype=np.float64)
        if len(values):
            column.mean = float(values.mean())
            column.std = float(values.std()) or 1.0
            inner = np.quantile(values, np.linspace(0, 1, config.numeric_bins + 1)[1:-1])
            column.edges = sorted({float(e) for e in inner})
    elif kind == "categorical":
        counts = Counter(v for v in map(_category, cells) if v is not None)
        column.categories = sorted(v for v, _ in counts.most_common(config.max_categories))
    elif kind == "multi":
        counts = Counter(v for c in cells for v in _values(c))
        column.categories = sorted(v for v, _ in counts.most_common(config.max_multi))
    return column


def _dense_column(column: _Column, cells: list[Any]) -> np.ndarray:
    out = np.zeros((len(cells), column.width()), dtype=np.float32)
    if column.kind == "numeric":
        for row, cell in enumerate(cells):
            value = _number(cell, column.name)
            out[row, 0] = 0.0 if value is None else (value - column.mean) / column.std
    elif column.kind in ("categorical", "multi"):
        position = {c: n for n, c in enumerate(column.categories)}
        for row, cell in enumerate(cells):
            values = [_category(cell)] if column.kind == "categorical" else _values(cell)
            for category in values:
                if category is not None and category in position:
                    out[row, position[category]] = 1.0
    return out


def _bin_label(column: _Column, value: float) -> str:
    bounds = [-math.inf, *column.edges, math.inf]
    b = int(np.searchsorted(column.edges, value, side="right"))
    lo, hi = bounds[b], bounds[b + 1]
    if lo == -math.inf:
        return f"{column.name}:<{hi:g}"
    if hi == math.inf:
        return f"{column.name}:>={lo:g}"
    return f"{column.name}:{lo:g}-{hi:g}"


def _column_terms(column: _Column, cell: Any) -> list[str]:
    if column.kind == "numeric":
        value = _number(cell, column.name)
        return [] if value is None else [_bin_label(column, value)]
    if column.kind == "categorical":
        category = _category(cell)
        return [] if category is None else [f"{column.name}:{category}"]
    if column.kind == "multi":
        return [f"{column.name}:{v}" for v in _values(cell)]
    return [f"{TEXT_NAMESPACE}:{t}" for t in tokenize("" if cell is None else cell)]


class TableEncoder:
    """Encodes the records (dicts) of one side, users or items, by its part of the spec."""

    def __init__(self, columns: dict[str, str], config: FeatureConfig | None = None):
        self.kinds = dict(columns)
        self.config = config or FeatureConfig()
        self.columns: list[_Column] = []

    def fit(self, records: Sequence[dict], shared: dict[str, _Column] | None = None) -> TableEncoder:
        """Learn scalers and categories; a column in ``shared`` (same name, same kind) reuses its fit."""
        shared = shared or {}
        self.columns = []
        for name, kind in self.kinds.items():
            other = shared.get(name)
            if other is not None and other.kind == kind:
                self.columns.append(other)
            else:
                self.columns.append(_fit_column(name, kind, [r.get(name) for r in records], self.config))
        return self

    def dense(self, records: Sequence[dict]) -> np.ndarray:
        """(n, width) float32; zero columns when the spec has no dense kinds."""
        blocks = [_dense_column(c, [r.get(c.name) for r in records]) for c in self.columns]
        return np.hstack(blocks) if blocks else np.zeros((len(records), 0), dtype=np.float32)

    def dense_names(self) -> list[str]:
        names = []
        for column in self.columns:
            if column.kind == "numeric":
                names.append(column.name)
            else:
                names.extend(f"{column.name}={c}" for c in column.categories)
        return names

    def terms(self, records: Sequence[dict]) -> list[list[str]]:
        return [[t for c in self.columns for t in _column_terms(c, r.get(c.name))] for r in records]

    def to_json(self) -> dict:
        return {"kinds": self.kinds, "config": asdict(self.config), "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_json(cls, state: dict) -> TableEncoder:
        encoder = cls(state["kinds"], FeatureConfig(**state["config"]))
        encoder.columns = [_Column(**c) for c in state["columns"]]
        return encoder


# ---------------------------------------------------------------- content vocabulary


class ContentVocabulary:
    """Terms -> TF-IDF columns, fitted on the item catalog.

    Each namespace (``skill``, ``genres``, ``text`` ...) is L2-normalised on its own before the row
    is, so one long description cannot drown the structured fields.
    """

    def __init__(self, terms: list[str] | None = None, idf: list[float] | None = None):
        self._set_terms(list(terms or []))
        self.idf = np.asarray(idf or [], dtype=np.float32)

    def _set_terms(self, terms: list[str]) -> None:
        self.terms = terms
        self._index = {t: n for n, t in enumerate(terms)}
        # each term's namespace as a small int, worked out once: serving encodes a profile per request
        self._namespace_ids = np.unique([t.split(":", 1)[0] for t in terms], return_inverse=True)[1].astype(np.int64)

    def fit(
        self, documents: Sequence[Iterable[str]], max_terms: int = 20000, user_documents: Sequence[Iterable[str]] = ()
    ) -> ContentVocabulary:
        """Terms of the item ``documents`` by document frequency, then the users' structured terms no item
        has (a skill nobody asks for), so reasons can count a user's skills truly; ``max_terms`` in all."""
        df = Counter(t for doc in documents for t in set(doc))
        user_only = Counter(
            t for doc in user_documents for t in set(doc) if t not in df and not t.startswith(f"{TEXT_NAMESPACE}:")
        )
        ranked = sorted(df, key=lambda t: (-df[t], t)) + sorted(user_only, key=lambda t: (-user_only[t], t))
        self._set_terms(sorted(ranked[:max_terms]))
        n = len(documents)
        self.idf = np.asarray([math.log((1 + n) / (1 + df[t])) + 1.0 for t in self.terms], dtype=np.float32)
        return self

    def transform(self, documents: Sequence[Iterable[str]]) -> sp.csr_matrix:
        """(n_docs, n_terms) csr float32; unknown terms are dropped."""
        index, n_terms = self._index, len(self.terms)
        columns: list[int] = []
        lengths = []
        for doc in documents:
            known = [index[t] for t in doc if t in index]
            columns += known
            lengths.append(len(known))
        # each (document, term) cell once, with how often the term occurs: sorted keys are the CSR's order
        keys = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths) * n_terms + np.asarray(columns, np.int64)
        cells, counts = np.unique(keys, return_counts=True)
        term_columns = (cells % max(n_terms, 1)).astype(np.int32)
        indptr = np.searchsorted(cells, np.arange(len(lengths) + 1, dtype=np.int64) * n_terms).astype(np.int32)
        values = ((1.0 + np.log(counts.astype(np.float64))) * self.idf[term_columns]).astype(np.float32)
        matrix = sp.csr_matrix((values, term_columns, indptr), shape=(len(lengths), n_terms))
        return unit_rows(_normalise_namespaces(matrix, self._namespace_ids))

    def to_json(self) -> dict:
        return {"terms": self.terms, "idf": self.idf.tolist()}

    @classmethod
    def from_json(cls, state: dict) -> ContentVocabulary:
        return cls(state["terms"], state["idf"])


def _normalise_namespaces(matrix: sp.csr_matrix, namespace_ids: np.ndarray) -> sp.csr_matrix:
    """Each row's values of each namespace (``namespace_ids``: one int per column) scaled to unit length."""
    if matrix.nnz == 0:
        return matrix
    row_of, columns = cells_of(matrix)
    key = row_of * (int(namespace_ids.max()) + 1) + namespace_ids[columns]
    norms = np.bincount(key, weights=matrix.data.astype(np.float64) ** 2)
    data = (matrix.data / np.sqrt(norms[key])).astype(np.float32)
    return sp.csr_matrix((data, matrix.indices, matrix.indptr), shape=matrix.shape)


# ---------------------------------------------------------------- both sides


@dataclass
class EncodedFeatures:
    user_features: np.ndarray
    item_features: np.ndarray
    user_content: sp.csr_matrix
    item_content: sp.csr_matrix
    content_vocab: list[str]


class FeaturePipeline:
    """The spec's encoders for users and items plus the shared content vocabulary; saved as one JSON."""

    FILE = "features.json"

    def __init__(self, spec: FeatureSpec, config: FeatureConfig | None = None):
        self.spec = spec
        self.config = config or FeatureConfig()
        self.items = TableEncoder(spec.items, self.config)
        self.users = TableEncoder(spec.users, self.config)
        self.vocabulary = ContentVocabulary()

    def fit(self, user_records: Sequence[dict], item_records: Sequence[dict]) -> FeaturePipeline:
        """Items first: a column both sides share takes the catalog's scale, so their terms coincide."""
        self.items.fit(item_records)
        self.users.fit(user_records, shared={c.name: c for c in self.items.columns})
        self.vocabulary.fit(self.items.terms(item_records), self.config.max_terms, self.users.terms(user_records))
        return self

    def transform(self, user_records: Sequence[dict], item_records: Sequence[dict]) -> EncodedFeatures:
        return EncodedFeatures(
            user_features=self.users.dense(user_records),
            item_features=self.items.dense(item_records),
            user_content=self.vocabulary.transform(self.users.terms(user_records)),
            item_content=self.vocabulary.transform(self.items.terms(item_records)),
            content_vocab=list(self.vocabulary.terms),
        )

    def to_json(self) -> dict:
        return {
            "spec": asdict(self.spec),
            "users": self.users.to_json(),
            "items": self.items.to_json(),
            "vocabulary": self.vocabulary.to_json(),
        }

    @classmethod
    def from_json(cls, state: dict) -> FeaturePipeline:
        pipeline = cls(FeatureSpec(**state["spec"]), FeatureConfig(**state["users"]["config"]))
        pipeline.users = TableEncoder.from_json(state["users"])
        pipeline.items = TableEncoder.from_json(state["items"])
        pipeline.vocabulary = ContentVocabulary.from_json(state["vocabulary"])
        return pipeline

    def save(self, directory: Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / self.FILE).write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, directory: Path) -> FeaturePipeline:
        try:
            return cls.from_json(json.loads((Path(directory) / cls.FILE).read_text()))
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise EngineError(f"cannot read the feature pipeline in {directory}: {exc}") from exc


# ---------------------------------------------------------------- the platform's own spec

STAGES = ("idea", "pre_seed", "seed", "series_a", "growth")
REMOTE_MODES = ("remote", "hybrid", "onsite")
ROLES = ("developer", "founder", "investor")
SALARY_BANDS = (0, 50_000, 100_000, 150_000, 200_000, 300_000)
CHECK_BANDS = (0, 25_000, 100_000, 500_000, 2_000_000, 10_000_000)
USER_FEATURE_DIM = 20
ITEM_FEATURE_DIM = 20


def _stage(raw: Any) -> str | None:
    """Stages normalised to STAGES; series_b, series_c, ... all count as growth."""
    value = _category(raw)
    if value is None:
        return None
    value = value.replace("-", "_").replace(" ", "_")
    if value in STAGES:
        return value
    return "growth" if value.startswith("series_") else None


def _money(raw: Any, column: str) -> float:
    value = _number(raw, column)
    return 0.0 if value is None or value <= 0 else min(math.log10(1.0 + value) / 7.0, 1.2)


def _capped(count: float, cap: float) -> float:
    return min(count, cap) / cap


def _one_hot(value: str | None, choices: Sequence[str]) -> list[float]:
    return [1.0 if value == c else 0.0 for c in choices]


def _skills(record: dict) -> list[str]:
    return _values(record.get("required_skills", record.get("skills")))


def platform_user_features(records: Sequence[dict]) -> np.ndarray:
    """(n, 20) float32 by the user table in the module docstring."""
    rows = []
    for r in records:
        stages = {_stage(s) for s in _values(r.get("preferred_stages"))}
        filled = [
            bool(_values(r.get("skills"))),
            bool(_values(r.get("industries"))),
            _category(r.get("remote_preference")) is not None,
            bool(str(r.get("bio") or "").strip()),
            _number(r.get("salary_min"), "salary_min") is not None
            or _number(r.get("check_size_min"), "check_size_min") is not None,
        ]
        rows.append([
            *_one_hot(_category(r.get("role")), ROLES),
            _capped(_number(r.get("years_experience"), "years_experience") or 0.0, 30),
            _capped(len(_values(r.get("skills"))), 20),
            _capped(len(_values(r.get("industries"))), 10),
            *_one_hot(_category(r.get("remote_preference")), REMOTE_MODES),
            _money(r.get("salary_min"), "salary_min"),
            _money(r.get("salary_max"), "salary_max"),
            _money(r.get("check_size_min"), "check_size_min"),
            _money(r.get("check_size_max"), "check_size_max"),
            *[1.0 if s in stages else 0.0 for s in STAGES],
            1.0 if filled[3] else 0.0,
            sum(filled) / len(filled),
        ])
    return np.asarray(rows, dtype=np.float32).reshape(len(records), USER_FEATURE_DIM)


def _item_stages(record: dict) -> set[str]:
    """A startup's or position's stage; an investor's preferred stages (as an item, for founders): the
    same ``stage:`` terms and stage columns, so a founder's startups' stages match the investors who
    invest at them."""
    stages = {_stage(record.get("stage"))} | {_stage(v) for v in _values(record.get("preferred_stages"))}
    return {stage for stage in stages if stage is not None}


def platform_item_features(records: Sequence[dict]) -> np.ndarray:
    """(n, 20) float32 by the item table in the module docstring."""
    rows = []
    for r in records:
        words = len(str(r.get("description") or "").split())
        stages = _item_stages(r)
        rows.append([
            *_one_hot(_category(r.get("item_type")), ("position", "startup")),
            _capped(len(_skills(r)), 20),
            _money(r.get("salary_min"), "salary_min"),
            _money(r.get("salary_max"), "salary_max"),
            *_one_hot(_category(r.get("remote")), REMOTE_MODES),
            _capped(_number(r.get("years_experience"), "years_experience") or 0.0, 30),
            math.log1p(max(_number(r.get("team_size"), "team_size") or 0.0, 0.0)) / math.log1p(1000),
            _money(r.get("funding_raised"), "funding_raised"),
            _money(r.get("funding_goal"), "funding_goal"),
            *[1.0 if s in stages else 0.0 for s in STAGES],
            _capped(len(_values(r.get("industries"))), 5),
            math.log1p(max(_number(r.get("open_positions"), "open_positions") or 0.0, 0.0)) / math.log1p(50),
            math.log1p(words) / math.log1p(1000),
        ])
    return np.asarray(rows, dtype=np.float32).reshape(len(records), ITEM_FEATURE_DIM)


@lru_cache(maxsize=65536)  # ranges repeat across a catalog: a million records' share a few thousand
def _band_terms(prefix: str, bands: tuple[float, ...], low: float | None, high: float | None) -> tuple[str, ...]:
    """Terms for every band a [low, high] range overlaps, e.g. ``salary:100k-150k``."""
    if low is None:
        if high is None:
            return ()
        low = high
    if high is None:
        high = low
    edges = [*bands, math.inf]
    return tuple(
        f"{prefix}:{_money_label(a)}-{_money_label(b)}" if b != math.inf else f"{prefix}:{_money_label(a)}+"
        for a, b in zip(edges[:-1], edges[1:], strict=True)
        if low < b and high >= a
    )


def _money_label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}m"
    return f"{value / 1000:g}k"


def _common_terms(record: dict, skills: list[str], text_fields: Sequence[str]) -> list[str]:
    terms = [f"skill:{s}" for s in skills]
    terms += [f"industry:{i}" for i in _values(record.get("industries"))]
    terms += [f"{TEXT_NAMESPACE}:{t}" for f in text_fields for t in tokenize(record.get(f) or "")]
    return terms


def platform_user_terms(record: dict) -> list[str]:
    """A user's declared tastes as content terms."""
    terms = _common_terms(record, _values(record.get("skills")), ("headline", "bio"))
    remote = _category(record.get("remote_preference"))
    terms += [f"remote:{remote}"] if remote else []
    terms += [f"stage:{s}" for s in {_stage(v) for v in _values(record.get("preferred_stages"))} if s]
    terms += _band_terms(
        "salary", SALARY_BANDS, _number(record.get("salary_min"), "salary_min"),
        _number(record.get("salary_max"), "salary_max"),
    )
    terms += _band_terms(
        "check", CHECK_BANDS, _number(record.get("check_size_min"), "check_size_min"),
        _number(record.get("check_size_max"), "check_size_max"),
    )
    return terms


def platform_item_terms(record: dict) -> list[str]:
    """A position's or startup's content as terms; the ticket it suits comes from check_size_min/max,
    else from funding_goal, assuming one investor takes 5-25% of a round."""
    terms = _common_terms(record, _skills(record), ("title", "name", "description"))
    remote = _category(record.get("remote"))
    terms += [f"remote:{remote}"] if remote else []
    terms += [f"stage:{s}" for s in sorted(_item_stages(record))]
    terms += _band_terms(
        "salary", SALARY_BANDS, _number(record.get("salary_min"), "salary_min"),
        _number(record.get("salary_max"), "salary_max"),
    )
    low, high = _number(record.get("check_size_min"), "check_size_min"), _number(
        record.get("check_size_max"), "check_size_max"
    )
    goal = _number(record.get("funding_goal"), "funding_goal")
    if low is None and high is None and goal:
        low, high = 0.05 * goal, 0.25 * goal
    terms += _band_terms("check", CHECK_BANDS, low, high)
    return terms


def platform_content(
    user_records: Sequence[dict], item_records: Sequence[dict], max_terms: int = 20000
) -> tuple[sp.csr_matrix, sp.csr_matrix, ContentVocabulary]:
    """(user_content, item_content, vocabulary): both sides in the catalog's vocabulary.

    Every term is interned: the same term of two records is then one string, where a million items' and
    users' own copies of their tens of terms held gigabytes until the vocabulary had read them all."""
    item_terms = [[sys.intern(t) for t in platform_item_terms(r)] for r in item_records]
    user_terms = [[sys.intern(t) for t in platform_user_terms(r)] for r in user_records]
    vocabulary = ContentVocabulary().fit(item_terms, max_terms, user_terms)
    user_content = vocabulary.transform(user_terms)
    return user_content, vocabulary.transform(item_terms), vocabulary


# ---------------------------------------------------------------- the market: rounds and crowded positions

# The smallest share of a round that an investor's largest check may be and still take part: below it the
# round is too big for them (a $50k angel in a $30M Series B). Generous on purpose, as it filters rather
# than scores (the check: content terms rank the closer fits first).
ROUND_SHARE_MIN = 0.01


def round_fits(round_size: np.ndarray, check_min: float, check_max: float) -> np.ndarray:
    """(n,) bool: whether rounds of ``round_size`` USD (NaN: not said) fit an investor whose checks run
    from ``check_min`` to ``check_max``: their smallest check is no bigger than the round, their largest at
    least ROUND_SHARE_MIN of it. An unsaid round, or an investor without a check range (max 0), fits."""
    sizes = np.asarray(round_size, dtype=np.float64)
    if check_max <= 0:
        return np.ones(sizes.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        fits = (check_min <= sizes) & (check_max >= ROUND_SHARE_MIN * sizes)
    return fits | np.isnan(sizes)


def crowding_penalty(applicants: np.ndarray, openings: np.ndarray, crowded_per_opening: float) -> np.ndarray:
    """(n,) float >= 0: what a position's blended score (z-score units) loses for its applicants per opening
    beyond ``crowded_per_opening``: log(1 + excess / threshold), 0 up to the threshold and growing smoothly
    (no cliff) and ever slower: 0.69 at twice the threshold, 1.1 at three times."""
    per_opening = np.asarray(applicants, dtype=np.float64) / np.maximum(np.asarray(openings, dtype=np.float64), 1.0)
    threshold = max(float(crowded_per_opening), 1e-9)
    return np.log1p(np.maximum(per_opening - threshold, 0.0) / threshold)
