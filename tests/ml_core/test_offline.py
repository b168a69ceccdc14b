"""The offline command end to end on a tiny CSV bundle."""
import csv
import json

import numpy as np
import pytest

from ml.core.offline import main

from .conftest import N_ITEMS, group_of_item, make_world


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    data = make_world()
    coo = data.matrix.tocoo()
    with open(folder / "train.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        writer.writerows([[f"u{u}", f"i{i}", 5, 0] for u, i in zip(coo.row, coo.col, strict=True)])
    (folder / "users.csv").write_text("user_id\n" + "\n".join(f"u{u}" for u in range(data.n_users)) + "\n")
    with open(folder / "items.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item_id", "genres", "title", "year"])
        writer.writerows([[f"i{i}", "ab"[group_of_item(i)], f"film {i}", 1990 + i % 10] for i in range(N_ITEMS)])
    spec = {"users": {}, "items": {"genres": "multi", "title": "text", "year": "numeric", "absent": "text"}}
    (folder / "features.json").write_text(json.dumps(spec))
    return folder, data


def run(bundle, algorithm, tmp_path):
    folder, _ = bundle
    out = tmp_path / f"{algorithm}.csv"
    code = main(["--train", str(folder / "train.csv"), "--users", str(folder / "users.csv"),
                 "--items", str(folder / "items.csv"), "--features", str(folder / "features.json"),
                 "--algorithm", algorithm, "--k", "5", "--out", str(out), "--seed", "0"])
    return code, out


@pytest.mark.parametrize("algorithm", ["popularity", "content_based", "collaborative"])
def test_writes_top_k_unseen_items_for_every_training_user(bundle, algorithm, tmp_path):
    code, out = run(bundle, algorithm, tmp_path)
    assert code == 0
    _, data = bundle
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"user_id", "item_id", "score"}
    by_user: dict[str, list[str]] = {}
    for row in rows:
        by_user.setdefault(row["user_id"], []).append(row["item_id"])
    assert len(by_user) == data.n_users and all(len(items) == 5 for items in by_user.values())
    for user, items in by_user.items():
        seen = {data.item_ids.ids[i] for i in data.matrix[data.user_ids.row(user)].indices}
        assert not seen & set(items)


def test_empty_training_file_is_a_clear_error(bundle, tmp_path, capsys):
    folder, _ = bundle
    empty = tmp_path / "empty.csv"
    empty.write_text("user_id,item_id,rating,timestamp\n")
    code = main(["--train", str(empty), "--users", str(folder / "users.csv"), "--items", str(folder / "items.csv"),
                 "--features", str(folder / "features.json"), "--algorithm", "popularity", "--out",
                 str(tmp_path / "o.csv")])
    assert code == 2
    assert "no interactions" in capsys.readouterr().err


def write_job_catalog(folder, seed: int = 0) -> dict[str, str]:
    """A sparse, text-heavy catalog: users declare skills, jobs require skills in structured and free text,
    each user applied to 3 jobs sharing 2+ of their skills; one application per user is held out."""
    rng = np.random.default_rng(seed)
    skills = [f"skill{n}" for n in range(24)]
    jobs = [rng.choice(skills, 3, replace=False) for _ in range(150)]
    held_out, train = {}, []
    users = []
    for user in range(200):
        own = set(rng.choice(skills, 3, replace=False))
        fits = [j for j, needs in enumerate(jobs) if len(own & set(needs)) >= 2]
        if len(fits) < 4:
            continue
        applied = rng.choice(fits, 4, replace=False)
        users.append([f"u{user}", "|".join(sorted(own))])
        train += [[f"u{user}", f"j{j}", 1, 0] for j in applied[1:]]
        held_out[f"u{user}"] = f"j{applied[0]}"
    with open(folder / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([["user_id", "item_id", "rating", "timestamp"], *train])
    with open(folder / "users.csv", "w", newline="") as f:
        csv.writer(f).writerows([["user_id", "skills"], *users])
    with open(folder / "items.csv", "w", newline="") as f:
        rows = [[f"j{j}", "|".join(needs), f"We need someone fluent in {' and '.join(needs)} to join the team"]
                for j, needs in enumerate(jobs)]
        csv.writer(f).writerows([["item_id", "skills", "description"], *rows])
    spec = {"users": {"skills": "multi"}, "items": {"skills": "multi", "description": "text"}}
    (folder / "features.json").write_text(json.dumps(spec))
    return held_out


def test_content_carries_a_sparse_text_heavy_catalog(tmp_path):
    held_out = write_job_catalog(tmp_path)
    hit_rates = {}
    for algorithm in ("popularity", "content_based"):
        code, out = run((tmp_path, None), algorithm, tmp_path)
        assert code == 0
        with open(out) as f:
            recommended = {(r["user_id"], r["item_id"]) for r in csv.DictReader(f)}
        hit_rates[algorithm] = np.mean([(u, i) in recommended for u, i in held_out.items()])
    assert hit_rates["content_based"] > 2 * hit_rates["popularity"]
