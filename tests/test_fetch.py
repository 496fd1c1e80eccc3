"""`corenet data fetch`: download, SHA-256 check, resume, default folder; against a local HTTP server only."""

from __future__ import annotations

import gzip
import hashlib
import re
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from typer.testing import CliRunner

import corenet.data.fetch as fetch_module
from conftest import MNIST_FOLDER as REAL_MNIST  # the test helpers' module (pytest's pythonpath)
from corenet.cli import app
from corenet.data.fetch import MNIST, FetchError, RemoteDataset, RemoteFile, fetch, fetch_file, partial_path

runner = CliRunner()


def corenet(*args):
    return runner.invoke(app, [str(a) for a in args])


class FileServer:
    """A local HTTP server for ``files`` (name -> bytes) that honours ``Range: bytes=N-`` and logs requests.

    ``cut[name] = n`` makes the next response for ``name`` stop after n bytes (a dropped connection).
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.cut: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                requested = self.headers.get("Range")
                server.requests.append((name, requested))
                if name not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[name], 0
                match = re.fullmatch(r"bytes=(\d+)-", requested or "")
                if match:
                    start = int(match.group(1))
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if name in server.cut:
                    payload = payload[: server.cut.pop(name)]
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def idx_gz(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def synthetic_mnist(train: int = 48, test: int = 20) -> dict[str, bytes]:
    """Four small IDX files under MNIST's names: a learnable bright bar per class."""
    rng = np.random.RandomState(0)
    files = {}
    for part, count in (("train", train), ("t10k", test)):
        labels = np.arange(count) % 10
        images = rng.randint(0, 60, (count, 28, 28))
        for index, label in enumerate(labels):
            images[index, 2 * label:2 * label + 3, :] = 255
        files[f"{part}-images-idx3-ubyte.gz"] = idx_gz(images)
        files[f"{part}-labels-idx1-ubyte.gz"] = idx_gz(labels)
    return files


@pytest.fixture
def synthetic(monkeypatch):
    """The synthetic files served locally, and the MNIST table replaced by their sizes and hashes."""
    files = synthetic_mnist()
    table = RemoteDataset("mnist", tuple(RemoteFile(name, len(body), hashlib.sha256(body).hexdigest())
                                         for name, body in files.items()), ("http://127.0.0.1:9/unused/",))
    monkeypatch.setitem(fetch_module.DATASETS, "mnist", table)
    server = FileServer(files)
    yield server
    server.close()


def test_fetch_downloads_verifies_and_puts_the_files_in_the_data_folder(synthetic, empty_data_folder):
    result = corenet("data", "fetch", "mnist", "--mirror", synthetic.url)
    assert result.exit_code == 0, result.output
    folder = empty_data_folder / "mnist"
    assert "4 file(s) downloaded, 0 already there, all verified (SHA-256)" in result.stdout
    for name, body in synthetic.files.items():
        assert (folder / name).read_bytes() == body
    assert sorted(p.name for p in folder.iterdir()) == sorted(synthetic.files)  # no .part left
    assert corenet("data", "path", "mnist").stdout.strip() == str(folder)
    synthetic.requests.clear()
    again = corenet("data", "fetch", "mnist", "--mirror", synthetic.url)
    assert "0 file(s) downloaded, 4 already there" in again.stdout and synthetic.requests == []


def test_fetch_to_a_folder(synthetic, tmp_path):
    target = tmp_path / "elsewhere"
    result = corenet("data", "fetch", "mnist", "--to", target, "--mirror", synthetic.url, "-q")
    assert result.exit_code == 0, result.output
    assert len(list(target.iterdir())) == 4


def test_sha256_mismatch_is_a_clear_error_and_leaves_no_file(synthetic, empty_data_folder):
    name = "t10k-labels-idx1-ubyte.gz"
    synthetic.files[name] = synthetic.files[name][:-1] + bytes([synthetic.files[name][-1] ^ 1])  # one bit flipped
    result = corenet("data", "fetch", "mnist", "--mirror", synthetic.url)
    assert result.exit_code == 1
    expected = fetch_module.DATASETS["mnist"].files[3].sha256
    assert f"cannot get {name}: {synthetic.url}{name}: SHA-256 mismatch: expected {expected}, got " in result.stderr
    assert "the file was deleted" in result.stderr
    folder = empty_data_folder / "mnist"
    assert not (folder / name).exists() and not partial_path(folder / name).exists()


def test_an_interrupted_download_resumes_with_a_range_request(synthetic, empty_data_folder):
    name = "train-images-idx3-ubyte.gz"
    body = synthetic.files[name]
    synthetic.cut[name] = 1000  # the connection drops after 1000 bytes
    result = corenet("data", "fetch", "mnist", "--mirror", synthetic.url)
    assert result.exit_code == 1 and "run the command again to resume" in result.stderr
    folder = empty_data_folder / "mnist"
    assert not (folder / name).exists() and partial_path(folder / name).read_bytes() == body[:1000]
    synthetic.requests.clear()
    result = corenet("data", "fetch", "mnist", "--mirror", synthetic.url)
    assert result.exit_code == 0, result.output
    assert (name, "bytes=1000-") in synthetic.requests  # only the missing bytes were asked for
    assert (folder / name).read_bytes() == body and not partial_path(folder / name).exists()


def test_a_partial_file_that_is_not_a_prefix_is_replaced(synthetic, tmp_path):
    remote = fetch_module.DATASETS["mnist"].files[1]
    part = partial_path(tmp_path / remote.name)
    part.write_bytes(b"x" * (remote.size + 5))  # longer than the file: cannot be a prefix
    path, new = fetch_file(remote, tmp_path, [synthetic.url])
    assert new and path.read_bytes() == synthetic.files[remote.name] and not part.exists()


def test_unreachable_mirrors_are_each_named(tmp_path):
    with pytest.raises(FetchError) as info:
        fetch("mnist", tmp_path, ["http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/"])
    message = str(info.value)
    assert "cannot get train-images-idx3-ubyte.gz: http://127.0.0.1:9/a/train" in message
    assert "http://127.0.0.1:9/b/train-images-idx3-ubyte.gz" in message
    with pytest.raises(FetchError, match="unknown data set 'cifar'"):
        fetch("cifar", tmp_path)
    assert corenet("data", "fetch", "cifar").exit_code == 2


def test_train_lenet_mnist_without_a_path_finds_the_fetched_data(synthetic, tmp_path):
    pytest.importorskip("corenet_lenet")
    assert corenet("data", "fetch", "mnist", "--mirror", synthetic.url, "-q").exit_code == 0
    path = tmp_path / "lenet.ckpt"
    result = corenet("train", "lenet-mnist", "-n", 3, "-b", 8, "-q", "-o", path)
    assert result.exit_code == 0, result.output
    assert "on 20 test samples (lenet-mnist, 3 iterations" in result.stdout  # t10k tests, train files train
    report = corenet("evaluate", path, "--json")  # the checkpoint names no path: the data folder again
    assert report.exit_code == 0 and '"count": 20' in report.stdout
    assert corenet("evaluate", path, "--data", "mnist", "--json").exit_code == 0
    named = corenet("train", "lenet-mnist", "--data", "mnist", "-n", 1, "-b", 8, "-q", "--no-checkpoint")
    assert named.exit_code == 0 and "on 20 test samples" in named.stdout  # --data mnist: the data folder


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason="the real MNIST test-set files are not beside the repository")
def test_the_built_in_hashes_match_the_real_test_set_files(tmp_path):
    files = {remote.name: (REAL_MNIST / remote.name).read_bytes() for remote in MNIST.files[2:]}
    server = FileServer(files)
    try:
        for remote in MNIST.files[2:]:  # the t10k files: their built-in size and SHA-256
            path, new = fetch_file(remote, tmp_path, [server.url])
            assert new and path.stat().st_size == remote.size
    finally:
        server.close()
    assert [f.size for f in MNIST.files] == [9_912_422, 28_881, 1_648_877, 4_542]
