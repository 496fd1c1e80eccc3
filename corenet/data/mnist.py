"""MNISTData and :func:`read_idx`: MNIST from IDX files, gzip-compressed or raw.

Nothing is read at import time; files are read when an ``MNISTData`` is built.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from corenet.data.base import ArrayData, check_batch_size, one_hot
from corenet.dtype import get_default_dtype
from corenet.errors import CorenetError
from corenet.files import read_regular_file
from corenet.shapes import boolean

#: IDX type code -> big-endian NumPy dtype
IDX_DTYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"
#: largest IDX file read, and largest payload a header may declare (MNIST's train images take 47 MB)
MAX_IDX_BYTES = 1 << 30

#: part -> (images file, labels file), each also accepted with a ``.gz`` suffix
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class IDXError(CorenetError, ValueError):
    """A file is not a valid IDX file, or an images/labels pair does not match."""


class _Inflater:
    """Gunzip a byte string piece by piece, never inflating more than asked for (gzip members in a row
    are one stream, as gzip.decompress reads them)."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.path = path
        self.stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.pending = data

    def read(self, count: int) -> bytes:
        """Up to ``count`` more bytes; fewer only where the gzip stream ends."""
        out = bytearray()
        try:
            while len(out) < count:
                if self.stream.eof:
                    rest = self.stream.unused_data
                    if rest[:2] != GZIP_MAGIC:
                        if rest.strip(b"\0"):
                            raise IDXError(f"{self.path}: {len(rest)} bytes that are not gzip follow the gzip stream")
                        break
                    self.stream, self.pending = zlib.decompressobj(16 + zlib.MAX_WBITS), rest
                if not self.pending:
                    raise IDXError(f"{self.path}: starts like gzip but the gzip stream is corrupt or truncated "
                                   f"(it ends early)")
                out += self.stream.decompress(self.pending, count - len(out))
                self.pending = self.stream.unconsumed_tail
        except zlib.error as exc:
            raise IDXError(f"{self.path}: starts like gzip but the gzip stream is corrupt or truncated "
                           f"({exc})") from None
        return bytes(out)


def _inflate(data: bytes, path: Path) -> bytes:
    """Gunzip ``data``, bounded by the size the IDX header inside declares.

    The header (4 bytes, then 4 per dimension) is inflated first and the payload it
    declares checked against :data:`MAX_IDX_BYTES`; then exactly that payload is
    inflated, and one more byte means the file is not what its header says: a gzip
    bomb costs no more memory than the data it claims to hold. A malformed header is
    returned as it is, for :func:`read_idx` to describe.
    """
    inflater = _Inflater(data, path)
    header = inflater.read(4)
    if len(header) < 4 or header[:2] != b"\0\0" or header[2] not in IDX_DTYPES or header[3] == 0:
        return header
    header += inflater.read(4 * header[3])
    if len(header) < 4 + 4 * header[3]:
        return header
    total = _declared_size(header, path)
    data = header + inflater.read(total - len(header))
    if len(data) == total and inflater.read(1):
        raise IDXError(f"{path}: IDX size mismatch: the gzip stream inflates to more than the {total} bytes its "
                       f"header declares (refused without inflating the rest)")
    return data


def _declared_size(header: bytes, path: Path) -> int:
    """Header plus payload bytes an IDX ``header`` declares (refused above :data:`MAX_IDX_BYTES`)."""
    ndim = header[3]
    shape = struct.unpack(f">{ndim}I", header[4:4 + 4 * ndim])
    size = math.prod(shape) * np.dtype(IDX_DTYPES[header[2]]).itemsize
    if size > MAX_IDX_BYTES:
        raise IDXError(f"{path}: the IDX header declares shape {shape} of {np.dtype(IDX_DTYPES[header[2]]).name}, "
                       f"{size} bytes, more than the {MAX_IDX_BYTES} an IDX file may hold here")
    return len(header) + size


def _read_bytes(path: Path) -> bytes:
    """The regular file's bytes (at most :data:`MAX_IDX_BYTES`), gunzipped (bounded) if they start with
    the gzip magic number, whatever the suffix. FIFOs and devices are refused unread."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such IDX file")
    raw = read_regular_file(path, limit=MAX_IDX_BYTES, what="MNIST IDX", error=IDXError)
    return _inflate(raw, path) if raw[:2] == GZIP_MAGIC else raw


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip or raw, detected by its first bytes) into a native-endian array.

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions and one
    big-endian uint32 per dimension; the payload must hold exactly that many values.
    Anything else raises :class:`IDXError` naming the file and what is wrong.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXError(f"{path}: not an IDX file: only {len(raw)} bytes, fewer than the 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise IDXError(
            f"{path}: not an IDX file: magic number starts with 0x{raw[:2].hex()}, expected 0x0000"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXError(f"{path}: not an IDX file: unknown data type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IDXError(f"{path}: not an IDX file: the header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header} header bytes, "
            f"the file has {len(raw)}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    count = math.prod(shape)
    expected, payload = count * dtype.itemsize, len(raw) - header
    if payload != expected:
        problem = "truncated IDX data" if payload < expected else "IDX size mismatch"
        raise IDXError(
            f"{path}: {problem}: the header declares shape {shape} of {dtype.name} "
            f"({expected} bytes of data) but the file holds {payload} bytes after the header"
        )
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def find_mnist_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists (plain first), else None. Whatever exists
    under the name counts: reading refuses a FIFO or device by name rather than calling it missing."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.exists():
            return candidate
    return None


def read_mnist_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check an images file (n, rows, cols) uint8 and a labels file (n,) in 0..9."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXError(
            f"{images_path}: MNIST images must be a 3-D uint8 IDX array (count, rows, cols), "
            f"got shape {images.shape} of {images.dtype}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise IDXError(
            f"{labels_path}: MNIST labels must be a 1-D uint8 IDX array, "
            f"got shape {labels.shape} of {labels.dtype}"
        )
    if images.shape[0] != labels.shape[0]:
        raise IDXError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise IDXError(f"{labels_path}: MNIST labels must lie in 0..9, found {int(labels.max())}")
    return images, labels


class MNISTData(ArrayData):
    """MNIST from a folder of IDX files by their standard names (each with or without ``.gz``).

    ``path`` is the folder; by default corenet's data folder for MNIST (where
    ``corenet data fetch mnist`` puts the files, see :mod:`corenet.data.folder`).
    Which files make up the two sets:

    - ``split=None`` and ``train-images-idx3-ubyte``/``train-labels-idx1-ubyte``
      present: train on them, test on ``t10k-images-idx3-ubyte``/``t10k-labels-idx1-ubyte``.
    - ``split=None`` and no train files: only the t10k files, the first 80% (8,000
      of 10,000) for training and the rest (the last 2,000) for testing.
    - ``split=k`` (an int): only the t10k files, the first ``k`` for training and the
      rest for testing, even when train files exist.

    Images come as (b, 1, rows, cols) in [0, 1] (pixel / 255, default dtype), labels
    as (b, 10) one-hot. ``next()`` reshuffles the training part every epoch with
    ``np.random`` when ``random`` is True. Bad files raise :class:`IDXError`.
    """

    classes = 10
    default_train_fraction = 0.8

    def __init__(self, batch_size: int, path: str | os.PathLike | None = None, random: bool = True,
                 split: int | None = None) -> None:
        check_batch_size(batch_size)  # the arguments before reading megabytes
        boolean("random", random, "MNISTData")
        if path is None:
            from corenet.data.folder import dataset_folder

            folder = dataset_folder("mnist")
            if not folder.is_dir():
                raise FileNotFoundError(f"MNISTData: no MNIST files in corenet's data folder {folder}; download "
                                        f"them with `corenet data fetch mnist`, or give the folder that holds "
                                        f"them (--data FOLDER)")
        elif not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"MNISTData: path must be a folder path, got {path!r}")
        else:
            folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"MNISTData: {folder} is not a folder holding the MNIST IDX files")
        train_files = [find_mnist_file(folder, name) for name in MNIST_FILES["train"]]
        test_files = [find_mnist_file(folder, name) for name in MNIST_FILES["t10k"]]
        if not all(test_files):
            missing = [name for name, found in zip(MNIST_FILES["t10k"], test_files) if found is None]
            raise FileNotFoundError(f"MNISTData: {folder} lacks {', '.join(missing)} (with or without .gz)"
                                    + ("; download them with `corenet data fetch mnist`" if path is None else ""))
        #: the t10k index where training ends (None when the train files are used)
        self.split: int | None = None
        if split is None and all(train_files):
            self.files = tuple(str(f) for f in (*train_files, *test_files))
            train_images, train_labels = read_mnist_pair(*train_files)
            test_images, test_labels = read_mnist_pair(*test_files)
        else:
            self.files = tuple(str(f) for f in test_files)
            images, labels = read_mnist_pair(*test_files)
            self.split = _check_split(split, images.shape[0], self.default_train_fraction)
            train_images, train_labels = images[: self.split], labels[: self.split]
            test_images, test_labels = images[self.split :], labels[self.split :]
        super().__init__(
            batch_size,
            _scale(train_images),
            one_hot(train_labels, self.classes),
            _scale(test_images),
            one_hot(test_labels, self.classes),
            random,
        )


def _check_split(split, count: int, default_fraction: float) -> int:
    """``split`` validated against ``count`` images; None -> ``default_fraction`` of them."""
    if split is None:
        split = int(round(default_fraction * count))
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or not 0 < split < count:
        raise ValueError(
            f"MNISTData: split must be an integer in [1, {count - 1}] (the t10k files hold {count} images), "
            f"got {split!r}"
        )
    return int(split)


def _scale(images: np.ndarray) -> np.ndarray:
    """(n, rows, cols) uint8 -> (n, 1, rows, cols) in [0, 1], default dtype."""
    dtype = get_default_dtype()
    return (images.astype(dtype) / dtype.type(255.0))[:, np.newaxis]
