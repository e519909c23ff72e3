"""count_samples / token_counts / batch_work: the work counted per training batch (on the hook hot path)."""

from __future__ import annotations

from collections import namedtuple

import pytest
import torch

from lightning_green.engine.batches import batch_work, count_samples, token_counts

Pair = namedtuple("Pair", "x y")
X, Y = torch.zeros(6, 3), torch.zeros(6, dtype=torch.long)


@pytest.mark.parametrize("batch,expected", [
    (X, 6),
    ((X, Y), 6),
    ([X, Y], 6),
    (Pair(X, Y), 6),
    ((torch.tensor(1.0), X), 6),  # a 0-dim tensor has no samples: the next one counts
    ([("meta", [X])], 6),
    ({"labels": Y[:4], "input_ids": torch.zeros(5, 7)}, 5),  # input_ids first, whatever the order
    ({"pixel_values": X}, 6),
    ((), 0),
    ([], 0),
    ({"text": ["a", "b"]}, 0),
    ("abc", 0),
])
def test_count_samples_is_the_leading_dimension_of_the_first_tensor(batch, expected):
    assert count_samples(batch) == expected
    assert batch_work(batch)[0] == expected  # the hot path's fast lanes agree


def test_token_counts_exclude_padding_count_it_apart_and_ignore_non_text_batches():
    ids = torch.ones(4, 10, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[:, 7:] = 0
    assert token_counts({"input_ids": ids, "attention_mask": mask}) == (28, 40)
    assert token_counts({"input_ids": ids}) == (40, 40)
    assert token_counts((X, Y)) == (None, None)
    assert token_counts({"x": X}) == (None, None)
    assert batch_work({"input_ids": ids, "attention_mask": mask}) == (4, 28, 40)
    assert batch_work((X, Y)) == (6, 0, 0)
    assert batch_work({"x": X}) == (6, 0, 0)
