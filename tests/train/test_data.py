"""MNIST IDX loading and the checksum-verifying downloader (against a local HTTP server)."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from train.data import MNIST_FILES, DataMissingError, download_mnist, load_mnist, read_idx
from train.download import DownloadError, Resource, fetch


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a gzip-ed unsigned-byte IDX file, as MNIST is published."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def write_tiny_mnist(root: Path, n_train: int = 64, n_test: int = 32, seed: int = 0) -> None:
    """A tiny MNIST-format data set whose label is readable from the image (a bar's position)."""
    rng = np.random.default_rng(seed)
    (root / "mnist").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 30).astype(np.uint8)
        for i, lab in enumerate(labels):
            images[i, 2 + 2 * lab : 4 + 2 * lab, 4:24] = 255
        write_idx(root / "mnist" / MNIST_FILES[(split, "images")][0], images)
        write_idx(root / "mnist" / MNIST_FILES[(split, "labels")][0], labels)


def test_read_idx_round_trip(tmp_path) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)


def test_read_idx_truncated(tmp_path) -> None:
    with gzip.open(tmp_path / "t.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 2]) + struct.pack(">2I", 10, 10) + b"\x00" * 50)
    with pytest.raises(ValueError, match=r"truncated IDX file \(50 of 100"):
        read_idx(tmp_path / "t.gz")


def test_missing_data_says_where_files_go(tmp_path) -> None:
    with pytest.raises(DataMissingError, match=r"MNIST files missing in .*mnist: t10k-images.*--download"):
        load_mnist(tmp_path, "test")


def test_real_mnist_shapes(mnist_test) -> None:
    images, labels = mnist_test
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the published test set's first labels


@pytest.fixture()
def http_root(tmp_path) -> Iterator[tuple[Path, str]]:
    """A local HTTP server on 127.0.0.1 serving a temporary folder."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_verifies_checksum(http_root, tmp_path) -> None:
    served, url = http_root
    (served / "good.bin").write_bytes(b"payload" * 1000)
    md5 = hashlib.md5(b"payload" * 1000).hexdigest()
    dest = tmp_path / "dest"
    path = fetch(Resource("good.bin", (url + "good.bin",), md5), dest)
    assert path.read_bytes() == b"payload" * 1000
    # a corrupted local copy is deleted and fetched again
    path.write_bytes(b"garbage")
    assert fetch(Resource("good.bin", (url + "good.bin",), md5), dest).read_bytes() == b"payload" * 1000


def test_fetch_rejects_bad_checksum_and_leaves_nothing(http_root, tmp_path) -> None:
    served, url = http_root
    (served / "evil.bin").write_bytes(b"tampered")
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match=r"checksum mismatch.*deleted"):
        fetch(Resource("evil.bin", (url + "evil.bin",), "0" * 32), dest)
    assert list(dest.iterdir()) == []


def test_fetch_tries_next_mirror(http_root, tmp_path) -> None:
    served, url = http_root
    (served / "f.bin").write_bytes(b"abc")
    res = Resource("f.bin", (url + "missing/f.bin", url + "f.bin"), hashlib.md5(b"abc").hexdigest())
    assert fetch(res, tmp_path / "d").read_bytes() == b"abc"
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(Resource("g.bin", (url + "g.bin",), "0" * 32), tmp_path / "d")


def test_download_mnist_from_mirror(http_root, tmp_path, monkeypatch, mnist_test) -> None:
    served, url = http_root
    from train.data import data_dir
    for name, _ in MNIST_FILES.values():
        shutil.copy(data_dir() / "mnist" / name, served / name)
    monkeypatch.setenv("EDGEINFER_MNIST_MIRROR", url)
    download_mnist(tmp_path)
    _, labels = load_mnist(tmp_path, "test")
    np.testing.assert_array_equal(labels, mnist_test[1])
