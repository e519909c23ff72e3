"""Synthetic sentiment reviews, generated offline from word lists with a seed.

This is *demo data*: short English-like film reviews whose label is the majority of the
opinions they contain (sentiment words, some negated: "was not good"), with a little label
noise so that accuracy stays below 100%. It exists so that ``python train.py`` runs anywhere without a network; it says
nothing about real-world accuracy. Use ``data=imdb`` or ``data=files`` for real data.
"""

from __future__ import annotations

import random

POSITIVE = (
    "good great excellent wonderful brilliant superb moving charming delightful enjoyable "
    "fun gripping clever beautiful memorable touching stunning masterful funny sharp "
    "elegant thrilling witty heartfelt fresh"
).split()
NEGATIVE = (
    "bad awful terrible boring dull weak clumsy tedious painful forgettable messy "
    "lifeless predictable bland shallow annoying confusing lazy silly flat poor "
    "pointless tiresome stale ugly"
).split()
SUBJECTS = tuple(
    "the " + s
    for s in (
        "film", "movie", "plot", "acting", "script", "cast", "story", "direction", "soundtrack",
        "dialogue", "ending", "pacing", "camera work", "lead actor", "villain", "humour", "editing",
    )
)
INTENSIFIERS = ("", "", "", "very ", "really ", "quite ", "truly ", "rather ")
NEUTRAL = (
    "i saw it on a sunday afternoon .",
    "my friend picked it for our weekly movie night .",
    "it runs for about two hours .",
    "the theatre was half empty .",
    "it is based on a novel i have not read .",
    "we watched the version with subtitles .",
    "the trailer had shown most of the story .",
    "it was released last spring .",
)
#: Probability that one opinion in a review agrees with the reviewer's overall mood.
AGREEMENT = 0.75
#: Probability that an opinion is phrased with a negation ("was not good" = negative).
NEGATION = 0.1
TEMPLATES = (
    "{subject} was {adv}{word} .",
    "{subject} felt {adv}{word} .",
    "i thought {subject} was {adv}{word} .",
    "honestly , {subject} is {adv}{word} .",
    "overall a {adv}{word} experience .",
)
NEGATED = (
    "{subject} was not {word} at all .",
    "{subject} was never {word} .",
    "i would not call {subject} {word} .",
)


def _sentence(rng: random.Random, polarity: int) -> tuple[str, int]:
    """One sentence and its polarity contribution (+1 or -1)."""
    negate = rng.random() < NEGATION
    word_polarity = -polarity if negate else polarity
    word = rng.choice(POSITIVE if word_polarity > 0 else NEGATIVE)
    template = rng.choice(NEGATED if negate else TEMPLATES)
    text = template.format(subject=rng.choice(SUBJECTS), adv=rng.choice(INTENSIFIERS), word=word)
    return text, polarity


def generate_reviews(num_samples: int, seed: int, label_noise: float = 0.05) -> dict[str, list]:
    """Generate ``num_samples`` labelled reviews; the same seed gives the same reviews.

    Args:
        num_samples: Number of reviews (>= 1).
        seed: Random seed.
        label_noise: Fraction of labels flipped at random, in [0, 0.5).

    Returns:
        ``{"text": [...], "label": [...]}`` with label 1 = positive, 0 = negative.
    """
    if int(num_samples) < 1:
        raise ValueError(f"`num_samples` must be >= 1, got {num_samples!r}")
    if not 0.0 <= float(label_noise) < 0.5:
        raise ValueError(f"`label_noise` must be in [0, 0.5), got {label_noise!r}")
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[int] = []
    for _ in range(int(num_samples)):
        n_opinions = rng.choice((1, 2, 3, 3, 4, 5))
        mood = rng.choice((1, -1))  # the reviewer's overall view; single opinions may disagree
        score = 0
        parts: list[str] = []
        for _ in range(n_opinions):
            text, polarity = _sentence(rng, mood if rng.random() < AGREEMENT else -mood)
            parts.append(text)
            score += polarity
        if score == 0:  # break ties with one more opinion in the reviewer's mood
            text, polarity = _sentence(rng, mood)
            parts.append(text)
            score += polarity
        for _ in range(rng.choice((0, 1, 1, 2))):
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(NEUTRAL))
        label = int(score > 0)
        if rng.random() < label_noise:
            label = 1 - label
        texts.append(" ".join(parts))
        labels.append(label)
    return {"text": texts, "label": labels}
