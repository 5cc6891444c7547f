"""Command line: `python -m train recipe NAME` builds a built-in from its recipe (train/recipes/);
`python -m train STAGE [options] --out DIR` runs one stage, STAGE one of digits, sentiment,
characters, vectors, ngrams, stack, ensemble."""
from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import NoReturn

import torch
from torch import nn

from edgeinfer.errors import SpecError
from edgeinfer.spec import ImageInput, TextInput
from train.augment import FONT_HALVES, TRAIN_HALVES, robust_digits, train_fonts, with_font_digits
from train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from train.configs import SHORT_SEED, DigitsConfig, LanguageModelConfig, SentimentConfig
from train.critic import CRITICS
from train.data import data_dir, download_mnist
from train.download import DownloadError
from train.ensemble import fold_branches
from train.lm import LanguageModel, fit_lm
from train.loop import CHECKPOINT, Data, LogitsOf, Optimisation, TensorData, accuracy, fit, resolve_device
from train.metrics import append_metrics
from train.models import NetConfig, RecurrentNet, build, count_parameters
from train.ngrams import fit_ngrams
from train.recipe import RECIPES, describe_recipes, run_recipe
from train.stack import stack
from train.tasks import (
    DIGIT_LABELS,
    SENTIMENT_LABELS,
    TokenData,
    char_corpus,
    composed_data,
    digits_data,
    lm_corpus,
    load_vectors,
    sentiment_data,
    sentiment_test_data,
    shift_digits,
    short_data,
)
from train.vectors import VECTORS, train_vectors, write_vectors

Command = Callable[[argparse.Namespace, Path], None]  # a sub-command: parsed arguments, data directory


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit code 2), without the usage."""

    def error(self, message: str) -> NoReturn:
        """Report a bad command line in one line and exit with code 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help texts with each option's default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.required:
            return action.help
        return super()._get_help_string(action)


def integer(low: int) -> Callable[[str], int]:
    """An argparse `type`: an integer >= `low`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give an integer >= {low}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is too small; give an integer >= {low}")
        return value
    return parse


def real(low: float, high: float = math.inf, strict: bool = False) -> Callable[[str], float]:
    """An argparse `type`: a finite number >= `low` (> `low` when `strict`) and < `high`."""
    want = f"a finite number {'>' if strict else '>='} {low:g}" + (f" and < {high:g}" if high < math.inf else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {want}") from None
        if not (math.isfinite(value) and (value > low if strict else value >= low) and value < high):
            raise argparse.ArgumentTypeError(f"{text} is out of range; give {want}")
        return value
    return parse


def device(text: str) -> torch.device:
    """An argparse `type`: a torch device this machine has (see train.loop.resolve_device)."""
    try:
        return resolve_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


COUNT, SIZE = integer(0), integer(1)  # 0 allowed (it usually means "none" or "all"); at least 1
POSITIVE, SCALE, FRACTION = real(0, strict=True), real(0), real(0, 1)  # > 0; >= 0; in [0, 1)


def io_options() -> argparse.ArgumentParser:
    """Options of every sub-command: where the data is, torch threads, the output folder."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--data", default=None, help="data directory (when not given: $EDGEINFER_DATA or ../shared/data)")
    p.add_argument("--threads", type=COUNT, default=0, help="torch threads (0: all cores)")
    p.add_argument("--out", required=True, type=Path, help="output folder (checkpoint.pt, metrics.jsonl, ...)")
    return p


def model_options() -> argparse.ArgumentParser:
    """The model and training-loop options of the sub-commands that train a recurrent net."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="lstm", help="recurrent cell")
    p.add_argument("--hidden", type=SIZE, default=128, help="hidden units per layer")
    p.add_argument("--layers", type=SIZE, default=1, help="stacked recurrent layers")
    p.add_argument("--dropout", type=FRACTION, default=0.0,
                   help="between stacked layers, on embeddings, and on a language model's last layer output")
    p.add_argument("--epochs", type=SIZE, default=12, help="passes over the training data")
    p.add_argument("--batch", type=SIZE, default=128, help="examples (language models: rows) per step")
    p.add_argument("--lr", type=POSITIVE, default=2e-3, help="peak learning rate (Adam; warm-up, then cosine decay)")
    p.add_argument("--seed", type=COUNT, default=0, help="random seed: the same seed gives the same weights")
    p.add_argument("--limit", type=COUNT, default=0, help="use only N train/test examples (0: all)")
    p.add_argument("--device", type=device, default="cpu",
                   help="train on cpu or cuda[:N] (checkpoints load anywhere)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--stop-after", type=COUNT, default=0, help="stop after epoch N, to resume later (0: never)")
    return p


def vocab_options(p: argparse.ArgumentParser, embed: int, embed_help: str) -> None:
    """The word-vocabulary options of `p`."""
    p.add_argument("--embed", type=SIZE, default=embed, help=embed_help)
    p.add_argument("--max-vocab", type=SIZE, default=20000, help="the N most frequent training words at most")
    p.add_argument("--min-count", type=COUNT, default=2, help="words seen fewer times are unknown")


def parser() -> argparse.ArgumentParser:
    """The argument parser: `recipe`, and one sub-command per stage, each running its own function (`command`)."""
    p = Parser(prog="python -m train", formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Train the built-in models: `python -m train recipe NAME` runs a recipe's every stage "
                           "(train/recipes/NAME.toml); `python -m train STAGE [options] --out DIR` runs one "
                           "(`python -m train STAGE --help` lists its options).",
               epilog=f"recipes (python -m train recipe NAME):\n{describe_recipes()}")
    sub = p.add_subparsers(dest="task", required=True, metavar="COMMAND")
    io, model = io_options(), model_options()
    r = sub.add_parser("recipe", help="build a built-in model from its recipe, every stage in order",
                       description="Run a recipe's stages in order (train/recipes/NAME.toml): each stage writes "
                                   "into OUT/STAGE; a stage finished by an earlier run with the same command is "
                                   "skipped, and an interrupted training stage resumes.",
                       formatter_class=HelpFormatter)
    r.set_defaults(command=recipe)
    r.add_argument("name", choices=RECIPES, help="the recipe")
    r.add_argument("--out", type=Path, default=None, help="output folder (default: runs/NAME)")
    r.add_argument("--data", default=None, help="data directory (when not given: $EDGEINFER_DATA or ../shared/data)")
    r.add_argument("--threads", type=COUNT, default=0, help="torch threads (0: all cores)")
    r.add_argument("--from", dest="start", default=None, metavar="STAGE",
                   help="run again from this stage on (it and every later one)")
    r.add_argument("--limit", type=COUNT, default=0,
                   help="every stage on N examples only (a quick trial; the figures are not the recipe's)")
    r.add_argument("--dry-run", action="store_true", help="print each stage's command instead of running it")
    r.add_argument("--install", action="store_true",
                   help="copy the recipe's model into edgeinfer/models/ (the built-in it reproduces)")

    def add(name: str, command: Command, summary: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        stage = sub.add_parser(name, parents=[*parents, io], help=summary, description=summary,
                               formatter_class=HelpFormatter)
        stage.set_defaults(command=command)
        return stage

    add_digits(add("digits", digits, "MNIST read row by row (28 steps of 28 pixels)", model))
    add_sentiment(add("sentiment", sentiment, "IMDB reviews read word by word", model))
    c = add("characters", characters, "character language model on a UTF-8 text", model)
    c.add_argument("--text", type=Path, default=None, help="the text (when not given: DATA/text/tinyshakespeare.txt)")
    c.add_argument("--embed", type=SIZE, default=64, help="character embedding width")
    c.add_argument("--bptt", type=SIZE, default=100, help="steps per truncated back-propagation window")
    c.add_argument("--checkpoint-minutes", type=SCALE, default=0.0,
                   help="also checkpoint within an epoch every M minutes, where --resume continues (0: never)")
    add_vectors(add("vectors", vectors, "word vectors (skip-gram) from the unlabelled and training reviews' "
                    "text, for `train sentiment --vectors OUT/vectors.txt`"))
    ng = add("ngrams", ngrams, "give a sentiment classifier a summed n-gram readout fitted by NB-weighted "
             "logistic regression (NBSVM's recipe)")
    ng.add_argument("--init", type=Path, required=True, help="the checkpoint of `train sentiment`")
    ng.add_argument("--ngram-buckets", type=SIZE, required=True, help="hash buckets per n-gram order >= 2")
    ng.add_argument("--ngram-order", type=integer(2), default=3, help="n-grams of orders 1..K")
    ng.add_argument("--c", type=POSITIVE, default=1.0, help="inverse strength of the L2 penalty")
    ng.add_argument("--max-iter", type=SIZE, default=300, help="L-BFGS iterations at most")
    ng.add_argument("--holdout", type=COUNT, default=0,
                    help="leave out the same N held-out reviews as the other stages")
    short_options(ng)
    st = add("stack", run_stack, "weigh a sentiment model's head against its n-gram readout on the held-out reviews")
    st.add_argument("--init", type=Path, required=True, help="the checkpoint of `train ngrams`")
    st.add_argument("--holdout", type=COUNT, required=True,
                    help="fit on the held-out reviews: the same N as the training runs")
    short_options(st)
    en = add("ensemble", run_ensemble, "average the short-text branches of models trained from one classifier, "
             "folded into one wider branch (train.ensemble)")
    en.add_argument("--init", type=Path, nargs="+", required=True,
                    help="two or more checkpoints of `train sentiment --init C --short-branch H` with the same C")
    en.add_argument("--limit", type=COUNT, default=0, help="measure on N test reviews only (0: all)")
    return p


def short_options(p: argparse.ArgumentParser) -> None:
    """--short and --flip (train.short), the same in every sentiment stage."""
    p.add_argument("--short", type=COUNT, default=0,
                   help="also train on N short texts (1-3 sentences) of each review, with its label (0: none)")
    p.add_argument("--flip", action="store_true",
                   help="with --short: add each short text that one negation turns over, negated, with the other label")
    p.add_argument("--critic", choices=CRITICS, default=None,
                   help="with --short: leave out the short texts whose polarity by this critic (train.critic) "
                        "contradicts their review's label")
    p.add_argument("--compose", type=COUNT, default=0,
                   help="with --short: also train on N short texts composed from sentiment lexicons "
                        "(train.compose: VADER and AFINN polarity in plain, negated, intensified and "
                        "contrasted frames)")
    p.add_argument("--expectations", type=FRACTION, default=0.2,
                   help="with --compose: the share of the composed clauses that are an expectation met or not "
                        "(train.functions: 'it arrived on time', 'it leaks')")


def add_digits(d: argparse.ArgumentParser) -> None:
    """The options of `train digits` besides the model's."""
    d.add_argument("--proj", type=COUNT, default=0, help="linear input layer width (0: none)")
    d.add_argument("--augment", type=COUNT, default=0, help="random shifts of up to N pixels")
    d.add_argument("--augment-robust", action="store_true",
                   help="augment for real inputs: stroke thickness, scale/aspect/rotation/shift, blur "
                        "(train.augment; after any --augment shift)")
    d.add_argument("--font-share", type=FRACTION, default=0.0,
                   help="add digits printed in the train-half fonts of benchmarks/digits_fonts.json, "
                        "this share of the training images")
    d.add_argument("--font-halves", type=font_halves, default=",".join(FONT_HALVES),
                   help="with --font-share: the train halves of benchmarks/digits_fonts.json to print digits in, "
                        "comma-separated: train (DejaVu/Liberation), unseen_train (the train-side packages of the "
                        f"unseen families) (default: {','.join(FONT_HALVES)}; 'train' alone: the earlier recipe)")
    d.add_argument("--anytime", type=SCALE, default=0.0,
                   help="also train every row's prediction with this weight (for early exit)")
    d.add_argument("--download", action="store_true", help="fetch missing files, verifying checksums")


def add_sentiment(s: argparse.ArgumentParser) -> None:
    """The options of `train sentiment` besides the model's."""
    vocab_options(s, 128, "word embedding width")
    s.add_argument("--vectors", type=Path, default=None, help="initial word vectors, word2vec/GloVe text format")
    s.add_argument("--init", type=Path, default=None,
                   help="start from a sentiment classifier's checkpoint (every tensor the two share); with "
                        "--short-branch, the classifier the branch is added to")
    s.add_argument("--anytime", type=SCALE, default=0.0,
                   help="also train the running prediction after every word with this weight")
    short_options(s)
    s.add_argument("--short-branch", type=integer(1), default=0, metavar="H",
                   help="give the classifier of --init (kept as it is, frozen) a short-text branch: a second "
                        "one-layer cell of H units and a head, trained on its own logits on the reviews and "
                        "their --short texts, that answers texts of a few words (the main head takes over "
                        "after --short-words)")
    s.add_argument("--short-words", type=POSITIVE, default=20.0,
                   help="with --short-branch: the text length (words) at which branch and main head weigh equally")
    s.add_argument("--holdout", type=COUNT, default=0,
                   help="withhold N training reviews (a fixed pick) from training, for `train stack`")


def add_vectors(v: argparse.ArgumentParser) -> None:
    """The options of `train vectors`."""
    vocab_options(v, 128, "vector width (the classifier's --embed)")
    v.add_argument("--window", type=SIZE, default=5, help="context words on each side, at most")
    v.add_argument("--negatives", type=SIZE, default=5, help="noise words per (word, context) pair")
    v.add_argument("--epochs", type=SIZE, default=1, help="passes over the text")
    v.add_argument("--batch", type=SIZE, default=16384, help="pairs per step")
    v.add_argument("--lr", type=POSITIVE, default=3e-3, help="learning rate (sparse Adam)")
    v.add_argument("--seed", type=COUNT, default=0, help="random seed")


def font_halves(text: str) -> str:
    """--font-halves: comma-separated train halves of the font split (train.augment.TRAIN_HALVES)."""
    halves = [h.strip() for h in text.split(",") if h.strip()]
    bad = [h for h in halves if h not in TRAIN_HALVES]
    if not halves or bad:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more of {', '.join(TRAIN_HALVES)} "
                                         "(held-out fonts are never trained on)")
    return ",".join(dict.fromkeys(halves))


def digits(a: argparse.Namespace, root: Path) -> None:
    """`train digits`: MNIST read row by row."""
    if a.download:
        download_mnist(root)
    train, test = digits_data(root, "train", a.limit), digits_data(root, "test", a.limit)
    halves, fonts = "", 0
    if a.font_share:
        chosen = tuple(a.font_halves.split(","))
        halves, fonts = a.font_halves, len(train_fonts(halves=chosen))
        train = TensorData(*with_font_digits(train.x, train.y, a.font_share, halves=chosen))
    config = NetConfig(a.cell, 28, a.hidden, a.layers, len(DIGIT_LABELS), a.proj, a.dropout)
    torch.manual_seed(a.seed)
    model = build(config)
    args = DigitsConfig(a.epochs, a.batch, a.lr, seed=a.seed, anytime=a.anytime, augment=a.augment,
                        augment_robust=a.augment_robust, font_share=a.font_share, font_halves=halves,
                        font_files=fonts)
    meta = Checkpoint.new("digits", DIGIT_LABELS, asdict(ImageInput()), config.to_dict())
    train_classifier(a, model, train, test, args, meta, digits_augment(a.augment, a.augment_robust))


def digits_augment(shift: int, robust: bool) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
    """The `train digits` augmentation: shifts of up to `shift` px, then (`robust`) robust_digits."""
    steps = ([shift_digits(shift)] if shift else []) + ([robust_digits()] if robust else [])
    if not steps:
        return None

    def apply(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        for step in steps:
            x = step(x, gen)
        return x

    return apply


def sentiment_config(a: argparse.Namespace, branch_of: str = "") -> SentimentConfig:
    """The settings of a `train sentiment` run, from its command line."""
    return SentimentConfig(a.epochs, a.batch, a.lr, seed=a.seed, anytime=a.anytime, short=a.short, flip=a.flip,
                           critic=a.critic or "", compose=a.compose, expectations=a.expectations,
                           branch_of=branch_of)


def sentiment(a: argparse.Namespace, root: Path) -> None:
    """`train sentiment`: IMDB reviews read word by word, optionally from word vectors (--vectors)
    or a classifier's checkpoint (--init)."""
    check_short(a)
    if a.short_branch:
        short_branch(a, root)
        return
    init = load_checkpoint(a.init) if a.init else None
    vocab = words_of(init, a.init) if init else None
    text_spec, train, test = sentiment_data(root, a.max_vocab, a.min_count, limit=a.limit, vocab=vocab)
    if a.holdout:
        train, held = train.split_holdout(a.holdout)
        print(f"holdout: training on {len(train):,} of {len(train) + len(held):,} reviews", file=sys.stderr)
    train = with_short(a, root, text_spec, train, a.limit)[0]
    config = NetConfig(a.cell, a.embed, a.hidden, a.layers, len(SENTIMENT_LABELS), dropout=a.dropout,
                       vocab=text_spec.vocab_size)
    torch.manual_seed(a.seed)
    model = build(config)
    if init:
        start_from(model, init, a.init, frozen=False)
    if a.vectors:
        table, found = load_vectors(a.vectors, text_spec.vocab, a.embed)
        model.inp[0].weight.data.copy_(table)
        print(f"vectors: {found:,} of {len(text_spec.vocab):,} words from {a.vectors}", file=sys.stderr)
    meta = Checkpoint.new("sentiment", SENTIMENT_LABELS, asdict(text_spec), config.to_dict())
    train_classifier(a, model, train, test, sentiment_config(a), meta)


def branch_logits(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """What a short-text branch trains on: its own logits (B, C), the frozen classifier not run."""
    assert isinstance(model, RecurrentNet)
    return model.branch_logits(**inputs)


def short_branch(a: argparse.Namespace, root: Path) -> None:
    """`train sentiment --short-branch H --init CLASSIFIER --short N`: the classifier, every tensor
    frozen, with a short-text branch trained on its own logits on the training reviews and their
    short texts."""
    if not a.init or not a.short:
        raise ValueError("--short-branch adds a branch to a trained classifier: give --init CHECKPOINT and --short N")
    if a.anytime or a.vectors:
        raise ValueError("--short-branch trains the branch on whole short texts: leave out --anytime and --vectors")
    init = load_checkpoint(a.init)
    if init.task != "sentiment":
        raise ValueError(f"{a.init}: not a sentiment classifier checkpoint (task {init.task!r})")
    base = init.net_config()
    if base.short_hidden:
        raise ValueError(f"{a.init}: the classifier has a short-text branch already")
    config = replace(base, short_hidden=a.short_branch, short_words=a.short_words)
    text_spec, reviews, test = sentiment_data(root, 0, 0, limit=a.limit, vocab=words_of(init, a.init))
    if a.holdout:
        reviews = reviews.split_holdout(a.holdout)[0]
    got = short_of(a, root, text_spec, a.limit)
    assert got is not None  # --short was checked above
    train = reviews.concat(got[0])
    torch.manual_seed(a.seed)
    model = build(config)
    start_from(model, init, a.init, frozen=True)
    meta = replace(Checkpoint.new("sentiment", SENTIMENT_LABELS, asdict(text_spec), config.to_dict()),
                   stack=init.stack, ngrams=init.ngrams)
    a.cell, a.layers, a.hidden = config.cell, config.layers, config.hidden
    train_classifier(a, model, train, test, sentiment_config(a, str(a.init)), meta, logits_of=branch_logits)
    # the epochs' test accuracy was the branch's alone: measure the gated model
    ckpt = load_checkpoint(a.out / CHECKPOINT)
    metrics = {**ckpt.metrics, "branch_test_accuracy": ckpt.metrics["test_accuracy"],
               "test_accuracy": accuracy(model, test)}
    save_checkpoint(a.out / CHECKPOINT, replace(ckpt, metrics=metrics))
    append_metrics(a.out, metrics)


def words_of(ckpt: Checkpoint, path: Path) -> tuple[str, ...]:
    """The word vocabulary of a checkpoint (ValueError when its model reads no words)."""
    spec = ckpt.input_spec()
    if not isinstance(spec, TextInput):
        raise ValueError(f"{path}: a {ckpt.task} checkpoint, whose model reads no words; give one written by "
                         "`python -m train sentiment` or `sentiment-lm`")
    return spec.vocab


def start_from(model: RecurrentNet, init: Checkpoint, path: Path, frozen: bool) -> tuple[str, ...]:
    """Load the tensors `model` shares with the sentiment classifier `init` (read from `path`):
    every tensor this model has (head and n-gram readout included). With `frozen` they get no
    gradients. Returns their names; ValueError when a shape differs."""
    if init.task != "sentiment":
        raise ValueError(f"{path}: not a sentiment classifier checkpoint (task {init.task!r}); "
                         "train one with `python -m train sentiment`")
    own = model.state_dict()
    shared = {k: v for k, v in init.state_dict.items() if k in own}
    wrong = [k for k, v in shared.items() if v.shape != own[k].shape]
    if wrong:
        raise ValueError(f"{path}: {', '.join(wrong)} do not fit this model's shape; use the same --cell, "
                         "--layers, --hidden and --embed as the run that wrote it")
    model.load_state_dict(shared, strict=False)
    if frozen:  # no gradients at all, so nothing is computed for them
        for name, param in model.named_parameters():
            if name in shared:
                param.requires_grad_(False)
    print(f"init: {len(shared)} tensors from {path} ({init.metrics})", file=sys.stderr)
    return tuple(shared)


def train_classifier(a: argparse.Namespace, model: RecurrentNet, train: Data, test: Data, args: Optimisation,
                     meta: Checkpoint, augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                     logits_of: LogitsOf | None = None) -> None:
    """Train a classifier built from the model options on the chosen device (see train.loop.fit)."""
    print(f"{a.task}: {a.cell} x{a.layers} hidden {a.hidden}: {count_parameters(model):,} parameters",
          file=sys.stderr)
    model.to(a.device)
    fit(model, train, test, args, a.out, meta, resume=a.resume, augment=augment, stop_after=a.stop_after,
        logits_of=logits_of)


def characters(a: argparse.Namespace, root: Path) -> None:
    """`train characters`: a character-level language model (TBPTT, state carried)."""
    text_path = (a.text or root / "text" / "tinyshakespeare.txt").resolve()
    spec, train_ids, val_ids = char_corpus(text_path)
    config = NetConfig(a.cell, a.embed, a.hidden, a.layers, spec.vocab_size, dropout=a.dropout,
                       vocab=spec.vocab_size)
    torch.manual_seed(a.seed)
    lm = LanguageModel(build(config), adaptive=False)
    print(f"characters: {len(train_ids):,} train / {len(val_ids):,} validation characters, "
          f"{spec.vocab_size} ids, {count_parameters(lm):,} parameters", file=sys.stderr)
    meta = Checkpoint.new("characters", ("<pad>", "<unk>", *spec.vocab), asdict(spec), config.to_dict(),
                          text=str(text_path), text_sha256=hashlib.sha256(text_path.read_bytes()).hexdigest())
    lm.to(a.device)
    args = LanguageModelConfig(a.epochs, a.batch, a.lr, seed=a.seed, bptt=a.bptt,
                               checkpoint_minutes=a.checkpoint_minutes)
    fit_lm(lm, train_ids, val_ids, args, a.bptt, a.out, meta, resume=a.resume, stop_after=a.stop_after,
           checkpoint_minutes=a.checkpoint_minutes)


def vectors(a: argparse.Namespace, root: Path) -> None:
    """`train vectors`: skip-gram word vectors, written to OUT/vectors.txt."""
    text_spec, _, _ = sentiment_data(root, a.max_vocab, a.min_count)
    tokens = lm_corpus(root, text_spec, seed=a.seed)
    print(f"vectors: {len(tokens):,} tokens, {len(text_spec.vocab):,} words, width {a.embed}", file=sys.stderr)
    table = train_vectors(tokens, text_spec.vocab_size, a.embed, a.epochs, a.window, a.negatives, a.batch, a.lr,
                          a.seed)
    write_vectors(a.out / VECTORS, text_spec.vocab, table)
    print(f"vectors: wrote {a.out / VECTORS}", file=sys.stderr)


def check_short(a: argparse.Namespace) -> None:
    """ValueError for a short-text option without the --short it needs (before any data is read)."""
    if a.flip and not a.short:
        raise ValueError("--flip negates short texts: give --short N too")
    if a.critic and not a.short:
        raise ValueError("--critic judges short texts: give --short N too")
    if a.compose and not a.short:
        raise ValueError("--compose adds to the short texts: give --short N too")


def short_of(a: argparse.Namespace, root: Path, spec: TextInput, limit: int = 0
             ) -> tuple[TokenData, TokenData | None] | None:
    """The short texts of the training reviews and of the held-out pick (train.short) as --short,
    --flip and --critic say; None without --short (ValueError for an option that
    needs another one)."""
    if not a.short:
        return None
    short, short_held, flips = short_data(root, spec, a.short, a.flip, SHORT_SEED, a.holdout, limit,
                                          critic_name=a.critic or "")
    print(f"short texts: {len(short):,} ({flips:,} negation flips)", file=sys.stderr)
    if a.compose:
        short = short.concat(composed_data(spec, a.compose, SHORT_SEED, a.expectations))
        print(f"composed texts: {a.compose:,}", file=sys.stderr)
    return short, short_held


def with_short(a: argparse.Namespace, root: Path, spec: TextInput, train: TokenData, limit: int = 0,
               held: TokenData | None = None) -> tuple[TokenData, TokenData | None]:
    """`train` (and `held`) followed by the short texts of their reviews when --short says so."""
    got = short_of(a, root, spec, limit)
    if got is None:
        return train, held
    short, short_held = got
    if held is not None and short_held is not None:
        held = held.concat(short_held)
    return train.concat(short), held


def held_out_split(root: Path, ckpt: Checkpoint, path: Path, holdout: int
                   ) -> tuple[TokenData, TokenData | None, TokenData]:
    """IMDB in the vocabulary of a checkpoint (read from `path`), for the stages after the first:
    (the training reviews less the `--holdout` pick, that pick or None without one, the test reviews)."""
    if ckpt.task != "sentiment":
        raise ValueError(f"{path}: not a sentiment classifier checkpoint (task {ckpt.task!r}); "
                         "train one with `python -m train sentiment`")
    _, train, test = sentiment_data(root, 0, 0, vocab=words_of(ckpt, path))
    rest, held = train.split_holdout(holdout) if holdout else (train, None)
    return rest, held, test


def ngrams(a: argparse.Namespace, root: Path) -> None:
    """`train ngrams`: fit a summed n-gram readout for a sentiment classifier (train.ngrams)."""
    check_short(a)
    init = load_checkpoint(a.init)
    train, held, test = held_out_split(root, init, a.init, a.holdout)
    train, held = with_short(a, root, TextInput(vocab=words_of(init, a.init)), train, held=held)
    fit_ngrams(init, a.init, train, held, test, a.ngram_buckets, a.ngram_order, a.c, a.out, a.max_iter)


def run_stack(a: argparse.Namespace, root: Path) -> None:
    """`train stack`: weigh the head against the n-gram readout (train.stack)."""
    check_short(a)
    init = load_checkpoint(a.init)
    rest, held, test = held_out_split(root, init, a.init, a.holdout)
    held = with_short(a, root, TextInput(vocab=words_of(init, a.init)), rest, held=held)[1]
    stack(init, a.init, held, test, a.out)


def run_ensemble(a: argparse.Namespace, root: Path) -> None:
    """`train ensemble`: fold the members' branches into one (train.ensemble), measure it on the
    test reviews and write OUT/checkpoint.pt."""
    members = [load_checkpoint(p) for p in a.init]
    folded = fold_branches(members, list(a.init))
    net = build(folded.net_config())
    net.load_state_dict(folded.state_dict)
    test = sentiment_test_data(root, TextInput(vocab=words_of(folded, a.init[0])), a.limit)
    metrics = {"test_accuracy": accuracy(net, test), "test_reviews": len(test)}
    print(f"ensemble: {len(members)} branches of {[m.config['short_hidden'] for m in members]} units folded into "
          f"{folded.config['short_hidden']}; test accuracy {metrics['test_accuracy']:.4%}", file=sys.stderr)
    save_checkpoint(a.out / CHECKPOINT, replace(folded, metrics=metrics))
    append_metrics(a.out, {**metrics, "ensemble": folded.train_args["ensemble"]}, echo=False)


def recipe(a: argparse.Namespace, root: Path) -> None:
    """`train recipe NAME`: every stage of train/recipes/NAME.toml, in order (train.recipe)."""
    run_recipe(a.name, a.out, data=a.data, threads=a.threads, start=a.start, limit=a.limit, dry_run=a.dry_run,
               install=a.install)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the sub-command; returns the exit code (2: a bad argument, missing
    data or an unusable checkpoint, reported in one line on stderr)."""
    try:
        a = parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad command line (2), already reported
        return exc.code if isinstance(exc.code, int) else 2
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        a.command(a, data_dir(a.data))
    except (OSError, DownloadError, ValueError, SpecError) as exc:  # DataMissingError is an OSError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
