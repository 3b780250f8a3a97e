"""Output paths and write errors: one place that decides which names may become part of a path.

Every path the tools write is ``<output root>/<parts...>``, where the root is what the user gave
(``--out``) or a default (``results/...``), and the parts come from names inside files (a sweep or
sensitivity spec's ``name``, a scenario's name, a product's name, a run key). Two rules:

- :func:`safe_name` checks a name that becomes a file or folder name: letters, digits, ``-``, ``_`` and
  ``.``, not starting with ``.`` or ``_`` (Parquet datasets, ``pd.read_parquet(folder)`` and R's arrow
  silently skip such files), no path separator, not empty, at most :data:`MAX_NAME` characters. Where
  the user can fix the name (a spec's ``name``) a bad one is refused with a :class:`ConfigError` naming
  the file and field (exit code 2); where a name is only a label read from data (a scenario or product
  name in a results table) :func:`label` turns it into a safe name instead (see the callers).
- :func:`inside` joins the parts to the root and refuses any result that does not stay inside the
  root once resolved (``..``, absolute parts, symlinks pointing out).

Write failures (no permission, a path that is a file, a full disk) become :class:`OutputError`, which
the command line reports as ``error: cannot write <path>: <reason>`` with exit code 1 and no
traceback. :func:`ensure_dir` checks an output folder up front, before any long computation.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from model.params import ConfigError

MAX_NAME = 100
_ALLOWED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
RULE = (f"use letters, digits, '-', '_' and '.', not starting with '.' or '_', no '/' or '\\', "
        f"at most {MAX_NAME} characters")


class OutputError(OSError):
    """Writing an output failed (permission, not a folder, disk full...): exit code 1, no traceback."""

    def __init__(self, path: str | Path, reason: str, code: int | None = None):
        super().__init__(code, reason, str(path))
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.reason}"


def name_problem(name: object) -> str:
    """Why ``name`` may not be a file or folder name ("" if it may)."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name) > MAX_NAME:
        return f"it is {len(name)} characters long"
    if "/" in name or "\\" in name or os.sep in name:
        return "it contains a path separator"
    if name[0] in "._":
        return f"it starts with {name[0]!r} (such files are hidden from Parquet datasets and file listings)"
    if not _ALLOWED.fullmatch(name):
        bad = sorted({c for c in name if not re.fullmatch(r"[A-Za-z0-9._-]", c)})
        return f"it contains {', '.join(repr(c) for c in bad)}"
    return ""


def safe_name(name: object, what: str) -> str:
    """``name`` if it may be a file or folder name, else ConfigError naming ``what`` (e.g.
    ``"spec.toml: name"``), the value and the rule."""
    problem = name_problem(name)
    if problem:
        raise ConfigError(f"{what} = {name!r}: not usable as a file or folder name because {problem}; {RULE}")
    return str(name)


def label(name: object, fallback: str = "unnamed") -> str:
    """A safe file or folder name made from a label (a scenario or product name read from data).

    A name that is already safe is returned unchanged; otherwise every run of other characters becomes
    ``-``, leading ``.``, ``_`` and ``-`` go, it is cut to fit and a short hash of the original is
    appended, so two different labels never share a folder.
    """
    text = "" if name is None else str(name)
    if not name_problem(text):
        return text
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).lstrip("._-")
    h = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{(s or fallback)[: MAX_NAME - 9]}-{h}"


def inside(root: str | Path, *parts: str | Path) -> Path:
    """``root / parts...``, refused (ConfigError) unless it resolves to a path inside ``root``."""
    root = Path(root)
    path = root.joinpath(*parts)
    base = root.resolve()
    target = path.resolve()
    if target != base and not target.is_relative_to(base):
        shown = "/".join(str(p) for p in parts)
        raise ConfigError(f"{shown!r}: would write to {target}, outside the output folder {base}; {RULE}")
    return path


def _reason(exc: OSError) -> str:
    if isinstance(exc, OutputError):
        return exc.reason
    return exc.strerror or type(exc).__name__


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn an OSError raised while writing ``path`` into an :class:`OutputError` naming it."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        where = exc.filename if getattr(exc, "filename", None) else path
        raise OutputError(where, _reason(exc), exc.errno) from exc


def ensure_dir(path: str | Path) -> Path:
    """Create the output folder ``path`` if needed and check that files can be written in it.

    Raises :class:`OutputError` (``cannot write <path>: <reason>``) when a parent is a file, the path is
    a file, permission is missing or the file system is read-only or full.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(path, "it exists and is not a folder", errno.ENOTDIR)
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".ree-write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    return path


def umask() -> int:
    """The process umask (read without changing it where the kernel reports it)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read it by setting it, then put it back at once
    os.umask(mask)
    return mask
