"""count_samples / token_count: the work counted per training batch (on the hook hot path)."""

from __future__ import annotations

from collections import namedtuple

import pytest
import torch

from lightning_green.engine.batches import count_samples, token_count

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


def test_token_count_excludes_padding_and_ignores_non_text_batches():
    ids = torch.ones(4, 10, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[:, 7:] = 0
    assert token_count({"input_ids": ids, "attention_mask": mask}) == 28
    assert token_count({"input_ids": ids}) == 40
    assert token_count((X, Y)) is None
    assert token_count({"x": X}) is None
