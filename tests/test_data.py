"""Data layers: IrisData, DigitData, MNISTData (+ read_idx), RandomData."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import corenet
from conftest import MNIST_FOLDER as MNIST_DIR  # the test helpers' module (pytest's pythonpath)
from corenet.data.base import one_hot, stratified_split
from corenet.data.digits import DigitData
from corenet.data.iris import IrisData
from corenet.data.mnist import IDXError, MNISTData, read_idx
from corenet.data.synthetic import RandomData
from corenet.errors import CorenetError

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


@pytest.fixture
def float32_default():
    corenet.set_default_dtype(np.float32)
    yield
    corenet.set_default_dtype(np.float64)


def idx_bytes(array: np.ndarray, code: int | None = None) -> bytes:
    """Serialise ``array`` as IDX (big-endian payload)."""
    array = np.asarray(array)
    code = CODES[array.dtype.type] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def assert_one_hot(labels: np.ndarray, classes: int) -> None:
    assert labels.ndim == 2 and labels.shape[1] == classes
    assert set(np.unique(labels)) <= {0.0, 1.0}
    np.testing.assert_array_equal(labels.sum(axis=1), 1)


def tiny_mnist(folder: Path, count: int, *, prefix: str = "t10k", compress: bool = True, seed: int = 0):
    """Write a tiny MNIST-like images/labels pair; return (images uint8, labels uint8)."""
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, (count, 4, 3)).astype(np.uint8)
    labels = rng.randint(0, 10, count).astype(np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
    return images, labels


# -- shared helpers --------------------------------------------------------------------------------


def test_one_hot_encodes_and_rejects_out_of_range():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="1-D"):
        one_hot(np.zeros((2, 2), dtype=int), 3)


def test_stratified_split_is_fixed_disjoint_and_balanced():
    labels = np.repeat(np.arange(3), 30)
    train, test = stratified_split(labels, 2 / 3, seed=0)
    again = stratified_split(labels, 2 / 3, seed=0)
    np.testing.assert_array_equal(train, again[0])
    np.testing.assert_array_equal(test, again[1])
    assert np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).size == 90
    np.testing.assert_array_equal(np.bincount(labels[train]), [20, 20, 20])
    with pytest.raises(ValueError, match="train_fraction"):
        stratified_split(labels, 1.0, seed=0)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_batch_size_must_be_positive_int(bad):
    with pytest.raises(ValueError, match="batch_size"):
        IrisData(bad)
    with pytest.raises(ValueError, match="batch_size"):
        RandomData(4, bad, 3)


# -- IrisData -----------------------------------------------------------------------------------------


def test_iris_shapes_split_and_one_hot():
    data = IrisData(16)
    x, y = data.next()
    assert x.shape == (16, 4) and y.shape == (16, 3)
    assert x.dtype == np.float64
    assert_one_hot(y, 3)
    assert data.last_input is x
    test_x, test_y = data.get_test_set()
    assert (data.train_size, data.test_size) == (99, 51)
    assert test_x.shape == (51, 4)
    assert_one_hot(test_y, 3)
    np.testing.assert_array_equal(test_y.sum(axis=0), [17, 17, 17])


def test_iris_train_and_test_partition_all_samples_standardised_on_train():
    from sklearn.datasets import load_iris

    data = IrisData(8)
    train_x, _ = data.get_train_set()
    test_x, _ = data.get_test_set()
    np.testing.assert_allclose(train_x.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(train_x.std(axis=0), 1, atol=1e-12)
    raw = load_iris().data
    restored = np.concatenate([train_x, test_x]) * data.feature_std + data.feature_mean
    np.testing.assert_allclose(np.sort(restored, axis=0), np.sort(raw, axis=0), atol=1e-12)
    restored_rows = {tuple(row) for row in np.round(restored, 6)}
    assert restored_rows == {tuple(row) for row in np.round(raw, 6)}


def test_iris_test_set_is_fixed_and_independent_of_global_seed():
    np.random.seed(1)
    first = IrisData(4).get_test_set()
    np.random.seed(2)
    np.random.random(17)
    second = IrisData(4).get_test_set()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_iris_batches_are_deterministic_when_seeded():
    def draw(seed: int) -> list[np.ndarray]:
        data = IrisData(10)
        np.random.seed(seed)
        return [np.concatenate(data.next(), axis=1) for _ in range(15)]

    a, b, c = draw(3), draw(3), draw(4)
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    assert any(not np.array_equal(left, right) for left, right in zip(a, c))


def test_iris_epoch_covers_each_sample_once_and_reshuffles():
    data = IrisData(33)
    np.random.seed(0)
    train_x, _ = data.get_train_set()
    epochs = [np.concatenate([data.next()[0] for _ in range(3)]) for _ in range(2)]
    for epoch in epochs:
        np.testing.assert_array_equal(np.sort(epoch, axis=0), np.sort(train_x, axis=0))
    assert not np.array_equal(epochs[0], epochs[1])
    assert data.epoch == 2


def test_iris_batch_crossing_epoch_boundary_and_larger_than_dataset():
    data = IrisData(40)
    batches = np.concatenate([data.next()[0] for _ in range(3)])
    train_x, _ = data.get_train_set()
    np.testing.assert_array_equal(np.sort(batches[:99], axis=0), np.sort(train_x, axis=0))
    big = IrisData(250)
    x, y = big.next()
    assert x.shape == (250, 4) and y.shape == (250, 3)


def test_iris_not_random_walks_in_stored_order():
    data = IrisData(30, random=False)
    train_x, train_y = data.get_train_set()
    x, y = data.next()
    np.testing.assert_array_equal(x, train_x[:30])
    np.testing.assert_array_equal(y, train_y[:30])
    for _ in range(3):
        x, _ = data.next()
    np.testing.assert_array_equal(x, np.concatenate([train_x[90:], train_x[:21]]))


def test_data_arrays_follow_default_dtype(float32_default):
    assert IrisData(4).next()[0].dtype == np.float32
    assert DigitData(4).next()[0].dtype == np.float32
    assert RandomData(3, 4, 2).next()[0].dtype == np.float32


def test_returned_batches_are_copies():
    data = IrisData(5, random=False)
    x, _ = data.next()
    x[:] = 1e9
    assert np.abs(data.get_train_set()[0]).max() < 100
    test_x, _ = data.get_test_set()
    test_x[:] = 1e9
    assert np.abs(data.get_test_set()[0]).max() < 100


# -- DigitData ---------------------------------------------------------------------------------------


def test_digits_shapes_range_split():
    data = DigitData(32)
    x, y = data.next()
    assert x.shape == (32, 1, 8, 8) and y.shape == (32, 10)
    assert_one_hot(y, 10)
    assert data.last_input is x
    test_x, test_y = data.get_test_set()
    assert test_x.shape == (599, 1, 8, 8) and data.train_size == 1198
    assert test_x.min() >= 0 and test_x.max() == 1.0
    assert_one_hot(test_y, 10)
    assert test_y.sum(axis=0).min() >= 50  # stratified: every class well represented


def test_digits_deterministic_when_seeded():
    def draw() -> np.ndarray:
        data = DigitData(20)
        np.random.seed(11)
        return np.concatenate([data.next()[0] for _ in range(70)])

    np.testing.assert_array_equal(draw(), draw())


# -- RandomData ---------------------------------------------------------------------------------------


def test_random_data_shapes_and_determinism():
    data = RandomData(5, 7, 3)
    np.random.seed(5)
    x, y = data.next()
    assert x.shape == (7, 5) and y.shape == (7, 3)
    assert_one_hot(y, 3)
    assert 0 <= x.min() and x.max() < 1
    assert data.last_input is x
    np.random.seed(5)
    x2, y2 = RandomData(5, 7, 3).next()
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    images, _ = RandomData((2, 6, 6), 4, 10).get_test_set()
    assert images.shape == (4, 2, 6, 6)


@pytest.mark.parametrize("args", [(0, 2, 3), ((2, -1), 2, 3), (3, 2, 0), (3, 2, True)])
def test_random_data_rejects_bad_sizes(args):
    with pytest.raises(ValueError):
        RandomData(*args)


# -- read_idx ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, dtype, compress):
    rng = np.random.RandomState(0)
    array = (rng.standard_normal((3, 2, 5)) * 100).astype(dtype)
    result = read_idx(write_idx(tmp_path / "a.idx", array, compress))
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_detects_gzip_by_magic_not_suffix(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    gz_without_suffix = write_idx(tmp_path / "plain-name-idx3-ubyte", array, compress=True)
    raw_with_gz_suffix = write_idx(tmp_path / "misleading.gz", array, compress=False)
    np.testing.assert_array_equal(read_idx(gz_without_suffix), array)
    np.testing.assert_array_equal(read_idx(raw_with_gz_suffix), array)


def _malformed(tmp_path: Path, name: str, data: bytes, compress: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


VALID = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "only 0 bytes"),
        (b"\x00\x00", "only 2 bytes"),
        (b"hello, this is not an IDX file", "magic number starts with 0x6865"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 3) + b"abc", "unknown data type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 3), "truncated IDX header"),
        (VALID[:-1], "truncated IDX data"),
        (idx_bytes(np.zeros(4, np.int32))[:-2], "truncated IDX data"),
        (VALID + b"\x00\x00", "size mismatch"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_rejects_malformed_files_naming_file_and_reason(tmp_path, data, reason, compress):
    path = _malformed(tmp_path, "broken-idx1-ubyte", data, compress)
    with pytest.raises(IDXError, match=reason) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, CorenetError) and isinstance(info.value, ValueError)


def test_read_idx_rejects_corrupt_gzip(tmp_path):
    path = _malformed(tmp_path, "x.gz", gzip.compress(VALID)[:-6])
    with pytest.raises(IDXError, match="gzip stream is corrupt or truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        read_idx(tmp_path / "nothing-here")


# -- MNISTData on tiny files ---------------------------------------------------------------------------


def test_mnist_tiny_t10k_only_default_split(tmp_path):
    images, labels = tiny_mnist(tmp_path, 20)
    data = MNISTData(3, tmp_path, random=False)
    assert (data.train_size, data.test_size, data.split) == (16, 4, 16)
    x, y = data.next()
    assert x.shape == (3, 1, 4, 3) and y.shape == (3, 10)
    np.testing.assert_allclose(x[:, 0], images[:3] / 255.0)
    np.testing.assert_array_equal(y.argmax(axis=1), labels[:3])
    test_x, test_y = data.get_test_set()
    np.testing.assert_allclose(test_x[:, 0], images[16:] / 255.0)
    np.testing.assert_array_equal(test_y.argmax(axis=1), labels[16:])
    assert_one_hot(test_y, 10)


def test_mnist_tiny_raw_files_and_explicit_split(tmp_path):
    images, labels = tiny_mnist(tmp_path, 10, compress=False)
    data = MNISTData(2, str(tmp_path), split=7)
    assert (data.train_size, data.test_size) == (7, 3)
    np.testing.assert_array_equal(data.get_test_set()[1].argmax(axis=1), labels[7:])
    for bad in (0, 10, 2.5, True):
        with pytest.raises(ValueError, match="split must be an integer in \\[1, 9\\]"):
            MNISTData(2, tmp_path, split=bad)


def test_mnist_tiny_uses_train_files_when_present_unless_split_given(tmp_path):
    train_images, train_labels = tiny_mnist(tmp_path, 12, prefix="train", compress=False, seed=1)
    test_images, test_labels = tiny_mnist(tmp_path, 5, prefix="t10k", compress=True, seed=2)
    data = MNISTData(4, tmp_path, random=False)
    assert (data.train_size, data.test_size, data.split) == (12, 5, None)
    np.testing.assert_allclose(data.get_train_set()[0][:, 0], train_images / 255.0)
    np.testing.assert_array_equal(data.get_test_set()[1].argmax(axis=1), test_labels)
    only_t10k = MNISTData(4, tmp_path, split=3)
    assert (only_t10k.train_size, only_t10k.test_size) == (3, 2)


def test_mnist_deterministic_when_seeded(tmp_path):
    tiny_mnist(tmp_path, 30)

    def draw() -> np.ndarray:
        data = MNISTData(7, tmp_path)
        np.random.seed(9)
        return np.concatenate([data.next()[0] for _ in range(10)])

    np.testing.assert_array_equal(draw(), draw())


def test_mnist_missing_folder_or_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        MNISTData(2, tmp_path / "absent")
    tiny_mnist(tmp_path, 5, prefix="train")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"):
        MNISTData(2, tmp_path)


def test_mnist_count_mismatch_names_both_files(tmp_path):
    images = np.zeros((5, 2, 2), np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8), compress=True)
    with pytest.raises(IDXError, match="5 images") as info:
        MNISTData(2, tmp_path)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "4 labels" in message


@pytest.mark.parametrize(
    ("images", "labels", "culprit", "reason"),
    [
        (np.zeros((4, 4), np.uint8), np.zeros(4, np.uint8), "images", "3-D uint8"),
        (np.zeros((4, 2, 2), np.float32), np.zeros(4, np.uint8), "images", "3-D uint8"),
        (np.zeros((4, 2, 2), np.uint8), np.zeros((4, 1), np.uint8), "labels", "1-D uint8"),
        (np.zeros((4, 2, 2), np.uint8), np.array([0, 1, 10, 2], np.uint8), "labels", "0..9"),
    ],
)
def test_mnist_rejects_wrong_content(tmp_path, images, labels, culprit, reason):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(IDXError, match=reason) as info:
        MNISTData(2, tmp_path)
    assert str(info.value).startswith(str(tmp_path / f"t10k-{culprit}"))


def test_mnist_not_an_idx_file_says_which_and_why(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"<html>not found</html>"))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(IDXError, match="not an IDX file: magic number") as info:
        MNISTData(2, tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)


# -- the real MNIST test files --------------------------------------------------------------------------

needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(), reason="MNIST t10k files not present"
)


@needs_mnist
def test_real_mnist_idx_headers():
    images = read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
    assert images.max() == 255 and images.min() == 0


@needs_mnist
def test_real_mnist_first_8000_train_last_2000_test():
    data = MNISTData(64, MNIST_DIR, random=False)
    assert (data.split, data.train_size, data.test_size) == (8000, 8000, 2000)
    x, y = data.next()
    assert x.shape == (64, 1, 28, 28) and y.shape == (64, 10)
    assert 0.0 <= x.min() and x.max() <= 1.0
    labels = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(y.argmax(axis=1), labels[:64])
    test_x, test_y = data.get_test_set()
    assert test_x.shape == (2000, 1, 28, 28)
    np.testing.assert_array_equal(test_y.argmax(axis=1), labels[8000:])
    assert MNISTData(10, MNIST_DIR, split=9000).test_size == 1000
