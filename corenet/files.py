"""Reading only regular files (bounded), and atomic writes that never leave a temporary file behind.

:func:`read_regular_file` refuses folders, FIFOs, devices and sockets before reading a
byte (a FIFO is opened non-blocking, so nothing hangs) and files larger than a limit.
:func:`atomic_write` writes a temporary file ``.<name>.<pid>.<random>.tmp`` beside the
target, fsyncs it and renames it over the target: a crash, ``kill -9``, a full disk or
Ctrl-C leaves either the old file or the new one. Temporary files left by a killed
writer (a process that no longer runs) are removed by the next write to the same path.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

from corenet.errors import CorenetError

#: bytes written per os.write call
CHUNK = 1 << 24
#: temporary files this process is writing right now (never cleaned up under a writer's feet)
_active: set[str] = set()
_active_lock = threading.Lock()


def file_kind(mode: int) -> str:
    """What a stat mode describes, in words ("a folder", "a FIFO", ...)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def _open_flags() -> int:
    return os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def read_regular_file(path, *, limit: int, what: str, error: type[Exception] = CorenetError) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), at most ``limit`` of them.

    Anything else raises ``error`` with a one-line message naming the file: missing,
    a folder, a FIFO or device (never opened for reading: no hang, no endless
    ``/dev/zero``), larger than ``limit``, unreadable.
    """
    source = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{source}: no such {what} file") from None
    except OSError as exc:
        raise error(f"{source}: cannot read the {what}: {exc.strerror or exc}") from None
    _check_regular(source, info, limit, what, error)
    try:
        descriptor = os.open(path, _open_flags())
    except OSError as exc:
        raise error(f"{source}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        _check_regular(source, os.fstat(descriptor), limit, what, error)  # the file opened is the one checked
        chunks, total = [], 0
        while True:
            chunk = os.read(descriptor, min(CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise error(f"{source}: grew past {limit} bytes while being read; not a {what}")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{source}: cannot read the {what}: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)


def _check_regular(source: str, info: os.stat_result, limit: int, what: str, error: type[Exception]) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{source}: is a folder, not a {what} file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{source}: is {file_kind(info.st_mode)}, not a {what} file; only regular files are read")
    if info.st_size > limit:
        raise error(f"{source}: is {info.st_size} bytes, more than the {limit} bytes a {what} may have")


def read_head(path, size: int = 64) -> bytes:
    """The first ``size`` bytes of the regular file ``path`` (opened non-blocking)."""
    descriptor = os.open(path, _open_flags())
    try:
        return os.read(descriptor, size)
    finally:
        os.close(descriptor)


# -- writing ----------------------------------------------------------------------------------------
def _file_mode(target: Path) -> int:
    """The target's current permission bits, or what a new file gets under the umask."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}."


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate it: never guess, keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def stale_temporaries(target) -> list[Path]:
    """Temporary files ``.<name>.*.tmp`` beside ``target`` whose writer is gone (see the module docstring)."""
    target = Path(target)
    prefix = _temporary_prefix(target)
    folder = target.parent
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    with _active_lock:
        active = set(_active)
    stale = []
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")) or len(name) <= len(prefix) + 4:
            continue
        path = folder / name
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
        except OSError:
            continue
        owner = name[len(prefix):-4].split(".", 1)[0]
        if owner.isdigit():
            pid = int(owner)
            if pid == os.getpid() and os.path.abspath(path) in active:
                continue
            if pid != os.getpid() and _process_alive(pid):
                continue
        stale.append(path)
    return stale


def remove_stale_temporaries(target) -> None:
    """Delete what :func:`stale_temporaries` finds (best effort)."""
    for path in stale_temporaries(target):
        try:
            os.unlink(path)
        except OSError:
            pass


def atomic_write(filename, payload: bytes, *, error: type[Exception] = CorenetError) -> None:
    """Write ``payload`` to ``filename`` via a temporary file in the same folder, fsync and rename.

    A crash, a full disk or an exception (Ctrl-C included) at any point leaves either
    the old file or the complete new one; this call's temporary file is removed on
    every error, and those of killed earlier writers are removed first. Callers check
    what the target is (see :func:`corenet.checkpoint.check_target`).
    """
    target = Path(filename)
    folder = target.parent
    if not folder.is_dir():
        raise error(f"{target}: cannot save, folder {folder} does not exist")
    if target.is_dir():
        raise error(f"{target}: cannot save, it is a folder")
    remove_stale_temporaries(target)
    mode = _file_mode(target)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f"{_temporary_prefix(target)}{os.getpid()}.",
                                                 suffix=".tmp", dir=folder)
    except OSError as exc:
        raise error(f"{target}: cannot save: {exc.strerror or exc}") from exc
    temporary = os.path.abspath(temporary)
    with _active_lock:
        _active.add(temporary)
    try:
        try:
            view = memoryview(payload)
            while view:
                written = os.write(descriptor, view[:CHUNK])
                view = view[written:]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise error(
                f"{target}: cannot save ({exc.strerror or exc}); the previous file, if any, is unchanged"
            ) from exc
        raise
    finally:
        with _active_lock:
            _active.discard(temporary)
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every platform allows it)."""
    try:
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)
