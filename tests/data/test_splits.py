"""Scene splits and test chunks."""

from __future__ import annotations

import pytest

from audio2photoreal_pipelines.data.splits import chunk_test_scenes, split_scenes


def test_split_follows_the_upstream_rule_on_sorted_names():
    names = [f"scene{i:02d}" for i in (7, 3, 10, 1, 2, 9, 4, 8, 6, 5)]

    splits = split_scenes(names)

    assert splits["train"] == ["scene01", "scene02", "scene03", "scene04"]
    assert splits["val"] == ["scene05", "scene06"]
    assert splits["test"] == ["scene07", "scene08", "scene09", "scene10"]


def test_split_keeps_at_least_one_train_scene():
    assert split_scenes(["a", "b", "c"], num_val=1, num_test=1)["train"] == ["a"]
    with pytest.raises(ValueError, match="need at least 7 scenes .* got 6"):
        split_scenes([f"s{i}" for i in range(6)])


def test_split_rejects_duplicate_names():
    with pytest.raises(ValueError, match="duplicate"):
        split_scenes(["a", "a", "b"], num_val=0, num_test=1)


def test_a_scene_of_exactly_two_chunks_keeps_both():
    # Upstream's range(0, T - 600, 600) would give only the chunk at 0 here.
    chunks = chunk_test_scenes({"s": 1200}, ["s"])

    assert sorted(c["start"] for c in chunks) == [0, 600]


def test_chunks_tile_without_overlap_and_drop_the_tail():
    lengths = {"a": 1799, "b": 650, "c": 599}

    chunks = chunk_test_scenes(lengths, ["a", "b", "c"], chunk_frames=600)

    assert sorted((c["scene"], c["start"]) for c in chunks) == [("a", 0), ("a", 600), ("b", 0)]
    assert all(c["length"] == 600 for c in chunks)


def test_chunk_order_is_shuffled_deterministically_by_seed():
    lengths = {"a": 6000, "b": 6000}

    first = chunk_test_scenes(lengths, ["a", "b"], seed=10)
    again = chunk_test_scenes(lengths, ["a", "b"], seed=10)
    other = chunk_test_scenes(lengths, ["a", "b"], seed=11)

    assert first == again
    assert first != other
    assert sorted(map(str, first)) == sorted(map(str, other))
    unshuffled = [{"scene": s, "start": k * 600, "length": 600} for s in "ab" for k in range(10)]
    assert first != unshuffled
