"""What ``corenet install NAME`` hands to pip: bundled plugins by short name, folders and files as given."""

from __future__ import annotations

import difflib
from pathlib import Path

from corenet.errors import CorenetError

#: characters that make an argument a pip requirement (version, extras, URL) rather than a plugin name
_REQUIREMENT = set("=<>!~[@/\\:")


class UnknownPlugin(CorenetError, ValueError):
    """A name that is neither a bundled plugin, nor a path, nor a pip requirement."""


def bundled_list() -> str:
    """``SHORT (DISTRIBUTION): SUMMARY; ...`` of every bundled plugin, for messages."""
    from corenet.catalog import BUNDLED

    return "; ".join(f"{entry.short_name} ({entry.distribution}): {entry.summary}" for entry in BUNDLED)


def pip_target(name: str, *, pypi: bool = False) -> tuple[str, bool]:
    """``(what pip installs, whether it is a local folder)`` for one ``corenet install`` argument.

    An existing path is installed as given; a bundled plugin's short name, distribution or
    folder name becomes its folder in this corenet checkout (see :func:`corenet.catalog.checkout_folder`), else its
    distribution; with ``pypi`` or a requirement spelling (``corenet-foo>=1``, a URL) the
    argument goes to pip unchanged. Anything else raises :class:`UnknownPlugin` with a
    "did you mean" and the bundled plugins.
    """
    from corenet.catalog import BUNDLED, by_short_name, checkout_folder

    if Path(name).exists():
        return name, Path(name).is_dir()
    if pypi or _REQUIREMENT & set(name) or name.endswith((".whl", ".tar.gz", ".zip")):
        return name, False
    entry = by_short_name(name)
    if entry is not None:
        folder = checkout_folder(entry)
        return (str(folder), True) if folder is not None else (entry.distribution, False)
    names = [e.short_name for e in BUNDLED] + [e.distribution for e in BUNDLED]
    close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownPlugin(
        f"unknown plugin {name!r}{hint}. Bundled plugins: {bundled_list()}. "
        f"For another package from PyPI: corenet install --pypi {name}"
    )
