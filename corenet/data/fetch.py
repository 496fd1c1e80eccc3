"""Download data sets into corenet's data folder: verified, resumable, atomic.

Each file is downloaded to ``<name>.part`` beside its target; an interrupted
download continues from there (an HTTP Range request) the next time. When the
bytes are complete their size and SHA-256 are checked against the table below,
and only then is the file renamed to its final name, so a file under its real name
is always complete and verified. A mismatch deletes the partial file and says so.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corenet.errors import CorenetError


@dataclass(frozen=True)
class RemoteFile:
    """A file of a data set: its name, size in bytes and SHA-256 as published."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class RemoteDataset:
    name: str
    files: tuple[RemoteFile, ...]
    #: base URLs tried in order, each holding every file under its name
    mirrors: tuple[str, ...]
    description: str = ""


#: The four MNIST files (LeCun, Cortes and Burges) as distributed, gzip-compressed IDX. Sizes as
#: published with the data set; the SHA-256 of the t10k files computed from copies whose MD5 match
#: the widely used published MD5 sums, the train files' as published by several independent projects.
MNIST = RemoteDataset(
    "mnist",
    (
        RemoteFile("train-images-idx3-ubyte.gz", 9_912_422,
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        RemoteFile("train-labels-idx1-ubyte.gz", 28_881,
                   "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        RemoteFile("t10k-images-idx3-ubyte.gz", 1_648_877,
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", 4_542,
                   "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
    (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://yann.lecun.com/exdb/mnist/",
    ),
    "60,000 training and 10,000 test images of handwritten digits, 28x28 grey (11 MB)",
)

DATASETS = {dataset.name: dataset for dataset in (MNIST,)}
CHUNK = 1 << 16
TIMEOUT = 30

#: ``progress(file, done_bytes, total_bytes)``, called as bytes arrive (and once at the start)
Progress = Callable[[RemoteFile, int, int], None]


class FetchError(CorenetError):
    """A download failed or its bytes do not match the published size and SHA-256."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def is_verified(path: Path, remote: RemoteFile) -> bool:
    """Whether ``path`` is a regular file with ``remote``'s size and SHA-256."""
    return path.is_file() and path.stat().st_size == remote.size and sha256_of(path) == remote.sha256


def partial_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _url(mirror: str, name: str) -> str:
    return mirror if mirror.endswith(name) else mirror.rstrip("/") + "/" + name


def _download(url: str, remote: RemoteFile, part: Path, progress: Progress | None) -> None:
    """Append the missing bytes of ``remote`` from ``url`` to ``part`` (resuming what is there)."""
    offset = part.stat().st_size if part.is_file() else 0
    if offset > remote.size:  # not a prefix of this file: start again
        part.unlink()
        offset = 0
    if offset == remote.size:
        return
    request = urllib.request.Request(url, headers={"User-Agent": "corenet", **(
        {"Range": f"bytes={offset}-"} if offset else {})})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310 (http/https mirrors)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the server cannot continue this part: start again
            part.unlink()
            return _download(url, remote, part, progress)
        raise
    with response:
        if offset and response.status != 206:  # the server ignored the Range: it sends the whole file
            offset = 0
        mode = "ab" if offset else "wb"
        done = offset
        if progress is not None:
            progress(remote, done, remote.size)
        with open(part, mode) as stream:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                if done + len(block) > remote.size:
                    raise FetchError(f"{url}: sends more than the {remote.size:,} bytes {remote.name} has")
                stream.write(block)
                done += len(block)
                if progress is not None:
                    progress(remote, done, remote.size)
            stream.flush()
            os.fsync(stream.fileno())


def fetch_file(remote: RemoteFile, folder: Path, mirrors: tuple[str, ...] | list[str],
               progress: Progress | None = None) -> tuple[Path, bool]:
    """Make ``folder/remote.name`` a verified copy; return (path, whether it was downloaded now).

    Tries each mirror in turn; raises :class:`FetchError` naming every mirror's failure.
    """
    target = folder / remote.name
    if is_verified(target, remote):
        return target, False
    part = partial_path(target)
    failures = []
    for mirror in mirrors:
        url = _url(mirror, remote.name)
        try:
            _download(url, remote, part, progress)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError, FetchError) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"{url}: {reason}")
            continue
        size = part.stat().st_size
        if size != remote.size:
            failures.append(f"{url}: the download stopped at {size:,} of {remote.size:,} bytes (run the "
                            f"command again to resume)")
            continue
        digest = sha256_of(part)
        if digest != remote.sha256:
            part.unlink()
            failures.append(f"{url}: SHA-256 mismatch: expected {remote.sha256}, got {digest}; the file was "
                            f"deleted")
            continue
        os.replace(part, target)
        _fsync_folder(folder)
        return target, True
    raise FetchError(f"cannot get {remote.name}: " + "; ".join(failures or ["no mirror given"]))


def fetch(name: str, folder: Path | None = None, mirrors: list[str] | None = None,
          progress: Progress | None = None) -> tuple[Path, list[Path]]:
    """Download data set ``name`` into ``folder`` (default: its folder in corenet's data folder).

    Returns (folder, the files downloaded now); files already present and verified are kept.
    """
    from corenet.data.folder import dataset_folder

    if name not in DATASETS:
        raise FetchError(f"unknown data set {name!r}; corenet can fetch: {', '.join(sorted(DATASETS))}")
    dataset = DATASETS[name]
    folder = Path(folder) if folder is not None else dataset_folder(name)
    if folder.exists() and not folder.is_dir():
        raise FetchError(f"{folder}: is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"{folder}: cannot create the folder: {exc.strerror or exc}") from exc
    downloaded = []
    for remote in dataset.files:
        path, new = fetch_file(remote, folder, tuple(mirrors or dataset.mirrors), progress)
        if new:
            downloaded.append(path)
    return folder, downloaded


def _fsync_folder(folder: Path) -> None:
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
