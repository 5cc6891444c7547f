"""Command line: `python -m train digits|sentiment|vectors|ngrams|stack|... [options] --out runs/NAME`."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from edgeinfer.spec import NGRAM_POOLS
from train.data import data_dir, download_mnist
from train.download import DownloadError
from train.lm import LanguageModel, fit_lm
from train.loop import TrainArgs, fit, load_checkpoint, resolve_device
from train.models import NetConfig, build, count_parameters
from train.ngrams import fit_ngrams
from train.stack import stack
from train.tasks import (DIGIT_LABELS, SENTIMENT_LABELS, TokenData, char_corpus, digits_data, digits_meta,
                         lm_corpus, load_vectors, sentiment_data, shift_digits)
from train.vectors import VECTORS, train_vectors, write_vectors


def parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per task, sharing the model and loop options."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="lstm")
    common.add_argument("--hidden", type=int, default=128)
    common.add_argument("--layers", type=int, default=1)
    common.add_argument("--dropout", type=float, default=0.0,
                        help="between stacked layers, on embeddings, and on a language model's last layer output")
    common.add_argument("--epochs", type=int, default=12)
    common.add_argument("--batch", type=int, default=128)
    common.add_argument("--lr", type=float, default=2e-3)
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--limit", type=int, default=0, help="use only N train/test examples")
    common.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    common.add_argument("--device", default="cpu", help="train on cpu or cuda[:N] (checkpoints load anywhere)")
    common.add_argument("--data", default=None, help="data directory (default: $EDGEINFER_DATA or ../shared/data)")
    common.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    common.add_argument("--stop-after", type=int, default=0, help="stop after epoch N (resume later)")
    common.add_argument("--out", required=True, type=Path)
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = p.add_subparsers(dest="task", required=True)
    d = sub.add_parser("digits", parents=[common], help="MNIST read row by row (28 steps of 28 pixels)")
    d.add_argument("--proj", type=int, default=0, help="linear input layer width (0: none)")
    d.add_argument("--augment", type=int, default=0, help="random shifts of up to N pixels")
    d.add_argument("--anytime", type=float, default=0.0,
                   help="also train every row's prediction with this weight (for early exit)")
    d.add_argument("--download", action="store_true", help="fetch missing files, verifying checksums")
    s = sub.add_parser("sentiment", parents=[common], help="IMDB reviews read word by word")
    s.add_argument("--embed", type=int, default=128, help="word embedding width")
    s.add_argument("--max-vocab", type=int, default=20000)
    s.add_argument("--min-count", type=int, default=2)
    s.add_argument("--max-len", type=int, default=0, help="train on the first N words (0: whole reviews)")
    s.add_argument("--vectors", type=Path, default=None, help="initial word vectors, word2vec/GloVe text format")
    s.add_argument("--init", type=Path, default=None,
                   help="start from a checkpoint: a language model (train sentiment-lm) gives its embedding and "
                        "recurrent layers, a sentiment classifier also its head")
    s.add_argument("--freeze-vectors", action="store_true", help="keep the --vectors embedding fixed")
    s.add_argument("--init-lr-scale", type=float, default=1.0,
                   help="learning rate of the --init weights relative to --lr (0 freezes them)")
    s.add_argument("--anytime", type=float, default=0.0,
                   help="also train the running prediction after every word with this weight")
    s.add_argument("--head-dropout", type=float, default=0.0,
                   help="dropout on the last hidden state before the classifier head")
    s.add_argument("--pool", action="store_true",
                   help="the head also reads the running mean and max of the hidden states")
    s.add_argument("--ngram-buckets", type=int, default=0,
                   help="the head also reads the weights of the word n-grams read (see --ngram-pool), "
                        "hashed into N buckets per order")
    s.add_argument("--ngram-order", type=int, default=3, help="n-grams of orders 1..K (with --ngram-buckets)")
    s.add_argument("--ngram-pool", choices=NGRAM_POOLS, default="mean",
                   help="the head reads the n-gram weights' mean per word or their sum")
    s.add_argument("--ngram-lr-scale", type=float, default=5.0,
                   help="learning rate of the n-gram weights relative to --lr")
    s.add_argument("--holdout", type=int, default=0,
                   help="withhold N training reviews (a fixed pick) from training, for `train stack`")
    s.add_argument("--ngram-alone", action="store_true",
                   help="train only the n-gram readout, on its own logits (the rest stays frozen)")
    lm = sub.add_parser("sentiment-lm", parents=[common],
                        help="pretrain a word-level language model on the unlabelled + training reviews")
    lm.add_argument("--embed", type=int, default=128, help="word embedding width")
    lm.add_argument("--max-vocab", type=int, default=20000)
    lm.add_argument("--min-count", type=int, default=2)
    lm.add_argument("--bptt", type=int, default=64, help="steps per truncated back-propagation window")
    lm.add_argument("--max-tokens", type=int, default=0, help="use only the first N tokens (0: all)")
    lm.add_argument("--no-unsup", action="store_true", help="training reviews only")
    v = sub.add_parser("vectors", help="word vectors (skip-gram) from the unlabelled and training reviews' text, "
                                       "for `train sentiment --vectors OUT/vectors.txt`")
    v.add_argument("--embed", type=int, default=128, help="vector width (the classifier's --embed)")
    v.add_argument("--max-vocab", type=int, default=20000)
    v.add_argument("--min-count", type=int, default=2)
    v.add_argument("--window", type=int, default=5, help="context words on each side, at most")
    v.add_argument("--negatives", type=int, default=5, help="noise words per (word, context) pair")
    v.add_argument("--epochs", type=int, default=1)
    v.add_argument("--batch", type=int, default=16384, help="pairs per step")
    v.add_argument("--lr", type=float, default=3e-3)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--max-tokens", type=int, default=0, help="use only the first N tokens (0: all)")
    v.add_argument("--no-unsup", action="store_true", help="training reviews only")
    ng = sub.add_parser("ngrams", help="give a sentiment classifier a summed n-gram readout fitted by "
                                       "NB-weighted logistic regression (NBSVM's recipe)")
    ng.add_argument("--init", type=Path, required=True, help="the checkpoint of `train sentiment`")
    ng.add_argument("--ngram-buckets", type=int, required=True, help="hash buckets per n-gram order >= 2")
    ng.add_argument("--ngram-order", type=int, default=3, help="n-grams of orders 1..K")
    ng.add_argument("--c", type=float, default=1.0, help="inverse strength of the L2 penalty")
    ng.add_argument("--max-iter", type=int, default=300, help="L-BFGS iterations at most")
    ng.add_argument("--holdout", type=int, default=0, help="leave out the same N held-out reviews as the other stages")
    st = sub.add_parser("stack",
                        help="weigh a sentiment model's head against its n-gram readout on the held-out reviews")
    st.add_argument("--init", type=Path, required=True,
                    help="the checkpoint of `train ngrams` (or `train sentiment --ngram-alone`)")
    st.add_argument("--holdout", type=int, default=0,
                    help="fit on the held-out reviews: the same N as the training runs")
    st.add_argument("--weights", type=Path, default=None,
                    help="apply the weights an earlier `train stack` fitted (to the parts retrained on every review)")
    for stage in (v, ng, st):
        stage.add_argument("--data", default=None, help="data directory (default: $EDGEINFER_DATA or ../shared/data)")
        stage.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
        stage.add_argument("--out", required=True, type=Path)
    c = sub.add_parser("characters", parents=[common], help="character language model on a UTF-8 text")
    c.add_argument("--text", type=Path, default=None, help="default: DATA/text/tinyshakespeare.txt")
    c.add_argument("--embed", type=int, default=64, help="character embedding width")
    c.add_argument("--bptt", type=int, default=100, help="steps per truncated back-propagation window")
    for lm_parser in (lm, c):
        lm_parser.add_argument("--checkpoint-minutes", type=float, default=0.0,
                               help="also checkpoint within an epoch every M minutes (--resume continues there)")
    return p


def characters(a: argparse.Namespace, root: Path) -> int:
    """`train characters`: a character-level language model (TBPTT, state carried)."""
    text_path = (a.text or root / "text" / "tinyshakespeare.txt").resolve()
    spec, train_ids, val_ids = char_corpus(text_path)
    config = NetConfig(a.cell, a.embed, a.hidden, a.layers, spec.vocab_size, dropout=a.dropout,
                       vocab=spec.vocab_size)
    torch.manual_seed(a.seed)
    lm = LanguageModel(build(config), adaptive=False)
    print(f"characters: {len(train_ids):,} train / {len(val_ids):,} validation characters, "
          f"{spec.vocab_size} ids, {count_parameters(lm):,} parameters", file=sys.stderr)
    meta = {"task": "characters", "labels": ["<pad>", "<unk>", *spec.vocab], "input": asdict(spec),
            "config": config.to_dict(), "text": str(text_path)}
    lm.to(a.device)
    fit_lm(lm, train_ids, val_ids, TrainArgs(a.epochs, a.batch, a.lr, seed=a.seed), a.bptt, a.out, meta,
           resume=a.resume, stop_after=a.stop_after, checkpoint_minutes=a.checkpoint_minutes)
    return 0


def pretrain(a: argparse.Namespace, root: Path) -> int:
    """`train sentiment-lm`: language-model pretraining for `train sentiment --init`."""
    text_spec, _, _ = sentiment_data(root, a.max_vocab, a.min_count, limit=a.limit)
    stream = lm_corpus(root, text_spec, unsup=not a.no_unsup, max_tokens=a.max_tokens, seed=a.seed)
    cut = int(len(stream) * 0.98)
    config = NetConfig(a.cell, a.embed, a.hidden, a.layers, len(SENTIMENT_LABELS), dropout=a.dropout,
                       vocab=text_spec.vocab_size)
    torch.manual_seed(a.seed)
    lm = LanguageModel(build(config))
    print(f"sentiment-lm: {len(stream):,} tokens, {count_parameters(lm):,} parameters", file=sys.stderr)
    meta = {"task": "sentiment-lm", "labels": list(SENTIMENT_LABELS), "input": asdict(text_spec),
            "config": config.to_dict()}
    lm.to(a.device)
    fit_lm(lm, stream[:cut], stream[cut:], TrainArgs(a.epochs, a.batch, a.lr, seed=a.seed), a.bptt, a.out,
           meta, resume=a.resume, stop_after=a.stop_after, checkpoint_minutes=a.checkpoint_minutes)
    return 0


def held_out_split(root: Path, ckpt: dict, holdout: int) -> tuple[TokenData, TokenData | None, TokenData]:
    """IMDB in a checkpoint's vocabulary, for the stages after the first: (the training reviews
    less the `--holdout` pick, that pick or None without one, the test reviews)."""
    if ckpt.get("task") != "sentiment":
        raise ValueError(f"not a sentiment classifier checkpoint (task {ckpt.get('task')!r}); "
                         "train one with `python -m train sentiment`")
    _, train, test = sentiment_data(root, 0, 0, vocab=tuple(ckpt["input"]["vocab"]))
    rest, held = train.split_holdout(holdout) if holdout else (train, None)
    return rest, held, test


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and train; returns the exit code."""
    a = parser().parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    root = data_dir(a.data)
    try:
        init = load_checkpoint(a.init) if getattr(a, "init", None) else None
        a.device = resolve_device(getattr(a, "device", "cpu"))
        if a.task == "sentiment-lm":
            return pretrain(a, root)
        if a.task == "stack":
            _, held, test = held_out_split(root, init, a.holdout)
            stack(init, a.init, held, test, a.out, a.weights)
            return 0
        if a.task == "vectors":
            text_spec, _, _ = sentiment_data(root, a.max_vocab, a.min_count)
            tokens = lm_corpus(root, text_spec, unsup=not a.no_unsup, max_tokens=a.max_tokens, seed=a.seed)
            print(f"vectors: {len(tokens):,} tokens, {len(text_spec.vocab):,} words, width {a.embed}", file=sys.stderr)
            table = train_vectors(tokens, text_spec.vocab_size, a.embed, a.epochs, a.window, a.negatives, a.batch,
                                  a.lr, a.seed)
            write_vectors(a.out / VECTORS, text_spec.vocab, table)
            print(f"vectors: wrote {a.out / VECTORS}", file=sys.stderr)
            return 0
        if a.task == "ngrams":
            train, held, test = held_out_split(root, init, a.holdout)
            fit_ngrams(init, a.init, train, held, test, a.ngram_buckets, a.ngram_order, a.c, a.out, a.max_iter)
            return 0
        if a.task == "characters":
            return characters(a, root)
        if a.task == "digits":
            if a.download:
                download_mnist(root)
            train, test = digits_data(root, "train", a.limit), digits_data(root, "test", a.limit)
            config = NetConfig(a.cell, 28, a.hidden, a.layers, len(DIGIT_LABELS), a.proj, a.dropout)
            meta = digits_meta()
        else:
            vocab = tuple(init["input"]["vocab"]) if init else None
            text_spec, train, test = sentiment_data(root, a.max_vocab, a.min_count, a.max_len, a.limit, vocab)
            if a.ngram_alone and not a.ngram_buckets:
                raise ValueError("--ngram-alone needs --ngram-buckets N")
            if a.ngram_alone and a.anytime:
                raise ValueError("--ngram-alone trains the n-gram readout on its own; leave out --anytime")
            if a.holdout:
                train, held = train.split_holdout(a.holdout)
                print(f"holdout: training on {len(train):,} of {len(train) + len(held):,} reviews", file=sys.stderr)
            config = NetConfig(a.cell, a.embed, a.hidden, a.layers, len(SENTIMENT_LABELS), dropout=a.dropout,
                               vocab=text_spec.vocab_size, head_dropout=a.head_dropout, pool=a.pool,
                               ngram_buckets=a.ngram_buckets, ngram_order=a.ngram_order, ngram_pool=a.ngram_pool)
            meta = {"task": "sentiment", "labels": list(SENTIMENT_LABELS), "input": asdict(text_spec)}
    except (FileNotFoundError, DownloadError, ValueError) as exc:  # DataMissingError is a FileNotFoundError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.manual_seed(a.seed)
    model = build(config)
    shared: dict[str, torch.Tensor] = {}
    if init is not None:
        # a language model gives its embedding and recurrent layers; a sentiment classifier every
        # tensor this model shares with it (head, n-gram readout), for the stacking stages
        own = model.state_dict()
        shared = {k: v for k, v in init["state_dict"].items() if k in own and (
            init.get("task") == "sentiment" or k.startswith(("inp.", "rnn.")))}
        wrong = [k for k, v in shared.items() if v.shape != own[k].shape]
        if wrong:
            print(f"error: {a.init}: {', '.join(wrong)} do not fit this model's shape; use the same --cell, "
                  f"--layers, --hidden, --embed (and --pool) as the run that wrote it", file=sys.stderr)
            return 2
        model.load_state_dict(shared, strict=False)
        if a.init_lr_scale == 0:  # frozen: no gradients at all, so nothing is computed for them
            for name, param in model.named_parameters():
                if name in shared:
                    param.requires_grad_(False)
        print(f"init: {len(shared)} tensors from {a.init} ({init['metrics']})", file=sys.stderr)
    if getattr(a, "ngram_alone", False):  # the n-gram readout learns on its own; the rest stays as it is
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith(("ngram.", "ngram_head.")))
        model.ngram_alone = True
    if getattr(a, "vectors", None):
        try:
            table, found = load_vectors(a.vectors, text_spec.vocab, a.embed)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        embedding = model.inp[0]
        embedding.weight.data.copy_(table)
        embedding.weight.requires_grad_(not a.freeze_vectors)
        print(f"vectors: {found:,} of {len(text_spec.vocab):,} words from {a.vectors}", file=sys.stderr)
    print(f"{a.task}: {a.cell} x{a.layers} hidden {a.hidden}: {count_parameters(model):,} parameters",
          file=sys.stderr)
    args = TrainArgs(a.epochs, a.batch, a.lr, seed=a.seed, augment=getattr(a, "augment", 0),
                     anytime=getattr(a, "anytime", 0.0), pretrained_lr_scale=getattr(a, "init_lr_scale", 1.0),
                     ngram_lr_scale=getattr(a, "ngram_lr_scale", 1.0))
    augment = shift_digits(args.augment) if args.augment else None
    model.to(a.device)
    fit(model, train, test, args, a.out, {**meta, "config": config.to_dict()}, resume=a.resume,
        augment=augment, stop_after=a.stop_after, pretrained=tuple(shared))
    return 0


if __name__ == "__main__":
    sys.exit(main())
