"""Each task's training settings: the optimisation shared by all (train.loop.Optimisation) and
what only that task has. A checkpoint stores its run's settings as provenance (`train_args`)."""
from __future__ import annotations

from dataclasses import dataclass

from train.loop import Optimisation

SHORT_SEED = 17  # every sentiment stage cuts the same short texts from the same reviews, and composes the same


@dataclass(frozen=True)
class DigitsConfig(Optimisation):
    """`train digits`: MNIST read row by row, with its augmentation and printed digits."""

    augment: int = 0  # random shifts of up to this many pixels
    augment_robust: bool = False  # train.augment.robust_digits: thickness, scale, rotation, blur
    font_share: float = 0.0  # share of printed digits (train-half fonts) among the training images
    font_halves: str = ""  # the train halves of benchmarks/digits_fonts.json printed in ("": none)
    font_files: int = 0  # how many font files of those halves this machine had (and training printed in)


@dataclass(frozen=True)
class SentimentConfig(Optimisation):
    """`train sentiment`: IMDB reviews read word by word, with short texts (and, for a short-text
    branch, the classifier it was added to, frozen)."""

    # short texts (train.short, train.compose), the same settings in every sentiment stage
    short: int = 0  # short texts cut from each training review, with its label (0: none)
    flip: bool = False  # each short text one negation turns over, negated, with the other label
    critic: str = ""  # short texts whose polarity by this critic (train.critic) contradicts their label left out
    compose: int = 0  # short texts composed from the sentiment lexicons (train.compose)
    expectations: float = 0.2  # the share of the composed clauses that are expectations met or not
    branch_of: str = ""  # with a short-text branch: the checkpoint of the frozen classifier


@dataclass(frozen=True)
class LanguageModelConfig(Optimisation):
    """`train characters`: a character-level language model trained by truncated back-propagation."""

    bptt: int = 100  # steps per window; the state is carried across windows
    checkpoint_minutes: float = 0.0  # also checkpoint within an epoch this often (0: at epoch ends only)
