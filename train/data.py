"""Data loaders reading the published files as they are (MNIST IDX)."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from train.download import Resource, fetch

DATA_ENV = "EDGEINFER_DATA"
MNIST_MIRROR_ENV = "EDGEINFER_MNIST_MIRROR"
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
MNIST_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train", "labels"): ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("test", "images"): ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MNIST_SIZES = {  # bytes of each published .gz file; a download is cut off past them
    "train-images-idx3-ubyte.gz": 9_912_422,
    "train-labels-idx1-ubyte.gz": 28_881,
    "t10k-images-idx3-ubyte.gz": 1_648_877,
    "t10k-labels-idx1-ubyte.gz": 4_542,
}


class DataMissingError(FileNotFoundError):
    """A data set's files are not where they should be."""


def data_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: the option, else $EDGEINFER_DATA, else ../shared/data beside the project."""
    if option:
        return Path(option)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def mnist_resources() -> list[Resource]:
    """The four MNIST files with their mirrors, published MD5s and sizes."""
    mirrors = (os.environ[MNIST_MIRROR_ENV],) if os.environ.get(MNIST_MIRROR_ENV) else MNIST_MIRRORS
    return [
        Resource(name, tuple(m.rstrip("/") + "/" + name for m in mirrors), md5, MNIST_SIZES[name])
        for name, md5 in MNIST_FILES.values()
    ]


def download_mnist(root: Path) -> None:
    """Fetch any missing MNIST file into root/mnist, verifying published sizes and checksums."""
    for resource in mnist_resources():
        fetch(resource, root / "mnist")


def read_idx(path: Path) -> np.ndarray:
    """Read a gzip-ed IDX file (ubyte data) into an array of its declared shape."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated IDX file ({data.size} of {int(np.prod(dims))} values)")
    return data.reshape(dims)


def load_mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST `split` ("train" or "test") as uint8 images (N, 28, 28) and labels (N,)."""
    folder = root / "mnist"
    paths = [folder / MNIST_FILES[(split, kind)][0] for kind in ("images", "labels")]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataMissingError(
            f"MNIST files missing in {folder}: {', '.join(missing)}; put the four published "
            f"*-ubyte.gz files there, set --data or ${DATA_ENV}, or pass --download"
        )
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


IMDB_LABELLED = "imdb/aclImdb_labelled.tar.gz"
IMDB_UNSUP = "imdb/aclImdb_unsup.tar.gz"
IMDB_LABELS = ("neg", "pos")


def load_imdb(root: Path, split: str) -> tuple[list[str], np.ndarray]:
    """IMDB reviews of `split` ("train", "test" or "unsup") and labels (0 neg, 1 pos; -1 unsup).

    Read from an unpacked `root/imdb/aclImdb/` folder when there is one, else straight from the
    published `.tar.gz` archives. Files are read in sorted order, so the result is reproducible.
    """
    import tarfile

    folder = root / "imdb" / "aclImdb"
    classes = ("unsup",) if split == "unsup" else IMDB_LABELS
    sub = "train" if split == "unsup" else split  # the unlabelled reviews live in train/unsup
    texts: list[tuple[str, str, int]] = []
    if folder.is_dir():
        for index, cls in enumerate(classes):
            label = -1 if split == "unsup" else index
            for path in sorted((folder / sub / cls).glob("*.txt")):
                texts.append((f"{cls}/{path.name}", path.read_text(encoding="utf-8"), label))
    else:
        archive = root / (IMDB_UNSUP if split == "unsup" else IMDB_LABELLED)
        if split == "unsup" and not archive.is_file():
            archive = root / IMDB_LABELLED  # some copies pack everything in one archive
        if not archive.is_file():
            raise DataMissingError(
                f"IMDB archive missing: {archive}; put the published aclImdb archives in {root / 'imdb'} "
                f"(or an unpacked aclImdb/ folder), or set --data or ${DATA_ENV}")
        prefix = f"aclImdb/{sub}/"
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if not (member.isfile() and member.name.startswith(prefix) and member.name.endswith(".txt")):
                    continue
                cls = member.name[len(prefix):].split("/")[0]
                if cls not in classes:
                    continue
                fh = tar.extractfile(member)
                assert fh is not None
                label = -1 if split == "unsup" else classes.index(cls)
                texts.append((member.name[len(prefix):], fh.read().decode("utf-8"), label))
    if not texts:
        raise DataMissingError(f"no IMDB {split} reviews found under {root / 'imdb'}")
    texts.sort(key=lambda t: t[0])
    return [t[1] for t in texts], np.array([t[2] for t in texts], dtype=np.int64)
