"""MNIST IDX loading and the checksum-verifying downloader (against a local HTTP server)."""
from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import re
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def serving(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A local HTTP server on 127.0.0.1 (a free port) answering with `handler`; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def http_root(tmp_path) -> Iterator[tuple[Path, str]]:
    """A local HTTP server on 127.0.0.1 serving a temporary folder."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[assignment]
    with serving(handler) as url:
        yield root, url


def test_fetch_verifies_checksum(http_root, tmp_path) -> None:
    served, url = http_root
    (served / "good.bin").write_bytes(b"payload" * 1000)
    md5 = hashlib.md5(b"payload" * 1000).hexdigest()
    dest = tmp_path / "dest"
    path = fetch(Resource("good.bin", (url + "good.bin",), md5, 7000), dest)
    assert path.read_bytes() == b"payload" * 1000
    # a corrupted local copy is deleted and fetched again
    path.write_bytes(b"garbage")
    assert fetch(Resource("good.bin", (url + "good.bin",), md5, 7000), dest).read_bytes() == b"payload" * 1000


def test_fetch_rejects_bad_checksum_and_leaves_nothing(http_root, tmp_path) -> None:
    served, url = http_root
    (served / "evil.bin").write_bytes(b"tampered")
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match=r"checksum mismatch.*deleted"):
        fetch(Resource("evil.bin", (url + "evil.bin",), "0" * 32, 8), dest)
    assert list(dest.iterdir()) == []


def test_fetch_tries_next_mirror(http_root, tmp_path) -> None:
    served, url = http_root
    (served / "f.bin").write_bytes(b"abc")
    res = Resource("f.bin", (url + "missing/f.bin", url + "f.bin"), hashlib.md5(b"abc").hexdigest(), 3)
    assert fetch(res, tmp_path / "d").read_bytes() == b"abc"
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(Resource("g.bin", (url + "g.bin",), "0" * 32, 3), tmp_path / "d")


def test_download_mnist_from_mirror(http_root, tmp_path, monkeypatch, mnist_test) -> None:
    served, url = http_root
    from train.data import data_dir
    for name, _ in MNIST_FILES.values():  # the published files, sizes and checksums
        shutil.copy(data_dir() / "mnist" / name, served / name)
    monkeypatch.setenv("EDGEINFER_MNIST_MIRROR", url)
    download_mnist(tmp_path)
    _, labels = load_mnist(tmp_path, "test")
    np.testing.assert_array_equal(labels, mnist_test[1])


def streaming(total: int, length: int | None = None, chunk: int = 1 << 16, pause_s: float = 0.0
              ) -> tuple[type[http.server.BaseHTTPRequestHandler], list[int], threading.Event]:
    """A handler answering GET with `total` bytes in `chunk`-byte writes `pause_s` apart (headed
    `Content-Length: length` when given), stopping when the client hangs up; with the list whose
    one item counts the bytes it sent and an event set when it is done."""
    sent, done = [0], threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes

        def do_GET(self) -> None:
            try:
                self.send_response(200)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                while sent[0] < total:
                    n = min(chunk, total - sent[0])
                    self.wfile.write(b"x" * n)
                    sent[0] += n
                    time.sleep(pause_s)
            except OSError:  # the client hung up
                pass
            finally:
                done.set()

        def log_message(self, *args: object) -> None:
            pass

    return Handler, sent, done


def test_fetch_stops_reading_an_oversized_response(tmp_path) -> None:
    """A response longer than the file's published size is cut off after at most 1 MiB more, not
    read to its end; no file and no temporary file is left."""
    handler, sent, done = streaming(96 << 20)  # 96 MiB for a 1000-byte file, no Content-Length
    with serving(handler) as url:
        with pytest.raises(DownloadError, match=r"big\.bin: more than the expected 1,000 bytes "
                                                r"\(stopped reading at ([\d,]+)\); deleted") as info:
            fetch(Resource("big.bin", (url + "big.bin",), "0" * 32, 1000), tmp_path / "d")
        assert done.wait(10)
    read = int(re.search(r"stopped reading at ([\d,]+)", str(info.value))[1].replace(",", ""))  # type: ignore[index]
    assert 1000 < read <= 1000 + (1 << 20)
    assert sent[0] < 48 << 20  # the server was cut off too: what it sent is what was read plus socket buffers
    assert list((tmp_path / "d").iterdir()) == []


def test_fetch_refuses_a_content_length_over_the_expected_size(tmp_path) -> None:
    handler, _sent, done = streaming(4 << 20, length=300_000_000)
    with serving(handler) as url:
        with pytest.raises(DownloadError, match=r"huge\.bin: Content-Length 300,000,000 bytes is more than the "
                                                r"expected 1,000 bytes; nothing read"):
            fetch(Resource("huge.bin", (url + "huge.bin",), "0" * 32, 1000), tmp_path / "d")
        assert done.wait(10)
    assert list((tmp_path / "d").iterdir()) == []


def test_fetch_deadline_bounds_the_whole_transfer(tmp_path) -> None:
    """A server sending a byte every 0.2 s never lets one socket read time out; `timeout_s` still
    ends the whole download of that URL in time."""
    handler, sent, done = streaming(30, length=30, chunk=1, pause_s=0.2)  # 6 s for the whole file
    with serving(handler) as url:
        t0 = time.perf_counter()
        with pytest.raises(DownloadError, match=r"slow\.bin: not finished within the 1 s timeout "
                                                r"\(\d+ of 30 bytes\); deleted"):
            fetch(Resource("slow.bin", (url + "slow.bin",), "0" * 32, 30), tmp_path / "d", timeout_s=1)
        elapsed = time.perf_counter() - t0
        assert done.wait(10)
    assert elapsed < 2.0
    assert sent[0] < 30
    assert list((tmp_path / "d").iterdir()) == []


def test_fetch_reports_a_short_file(http_root, tmp_path) -> None:
    served, url = http_root
    (served / "short.bin").write_bytes(b"abc")
    with pytest.raises(DownloadError, match=r"short\.bin: ended after 3 of the expected 5 bytes; deleted"):
        fetch(Resource("short.bin", (url + "short.bin",), hashlib.md5(b"abc").hexdigest(), 5), tmp_path / "d")
    assert list((tmp_path / "d").iterdir()) == []


def test_mnist_resources_have_the_published_sizes(mnist_test) -> None:
    from train.data import data_dir, mnist_resources
    sizes = {r.filename: r.size for r in mnist_resources()}
    assert sizes == {"train-images-idx3-ubyte.gz": 9912422, "train-labels-idx1-ubyte.gz": 28881,
                     "t10k-images-idx3-ubyte.gz": 1648877, "t10k-labels-idx1-ubyte.gz": 4542}
    assert sizes == {name: (data_dir() / "mnist" / name).stat().st_size for name in sizes}
