"""The lowest versions pyproject.toml allows, as a pip constraints file (``make test-min``).

pyproject.toml's lower bounds (``numpy>=2.0``, ``mesa[rec]==3.5.*``, ...) are claims; ``make test-min``
tests them. It builds ``.venv-min``, writes with this script one ``name==version`` line per direct
dependency (core and the ``test`` and ``research`` extras) at the lowest released version its specifier
allows on this Python (``pip index versions``: ``>=2.0`` gives 2.0.0, ``==3.5.*`` gives 3.5.0, the lowest
3.5.x released), installs the project under those constraints (transitive dependencies resolve normally)
and runs a part of the test suite there.

    python -m tools.lowest_deps --out .venv-min/constraints.txt   # write the constraints
    python -m tools.lowest_deps --check .venv-min/constraints.txt # installed = constrained? (table, exit 1 if not)

A requirement with only an upper bound (``ipyvuetify<3``) claims no lowest version: it is left out of the
constraints (resolved normally, like a transitive dependency) and reported as such.
Run it with the interpreter of the environment being built: it asks that interpreter's pip which releases
exist for it (wheels for its Python version and platform, or source distributions).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError:  # a fresh venv has no packaging, but its pip carries a copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("test", "research")
LOWER = (">=", ">", "==", "~=", "===")  # operators that bound a specifier from below


def requirements(pyproject: Path = ROOT / "pyproject.toml", extras=EXTRAS) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    texts = [*project["dependencies"], *(r for e in extras for r in project["optional-dependencies"][e])]
    return [Requirement(t) for t in texts]


def released(name: str) -> list[Version]:
    """The versions of ``name`` this interpreter's pip can install (from its configured index)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "index", "versions", name],
                          capture_output=True, text=True, timeout=300)
    m = re.search(r"^Available versions: (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or not m:
        raise SystemExit(f"pip index versions {name} failed:\n{proc.stdout}{proc.stderr}")
    out = []
    for v in m.group(1).split(","):
        try:
            out.append(Version(v.strip()))
        except InvalidVersion:
            continue
    return out


def lowest(req: Requirement) -> Version | None:
    """The lowest released, non-pre-release version ``req`` allows; None if nothing bounds it from below."""
    if not any(s.operator in LOWER for s in req.specifier):
        return None
    allowed = [v for v in released(req.name) if not v.is_prerelease and req.specifier.contains(v)]
    if not allowed:
        raise SystemExit(f"no released version of {req.name} satisfies {req.specifier}")
    return min(allowed)


def write(out: Path) -> None:
    lines = [f"# lowest versions allowed by pyproject.toml (core + {', '.join(EXTRAS)}); "
             "written by tools/lowest_deps.py"]
    for req in requirements():
        low = lowest(req)
        name = canonicalize_name(req.name)
        lines.append(f"{name}=={low}" if low else f"# {name}: {req.specifier} has no lower bound; resolved normally")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def check(constraints: Path) -> int:
    """Print requirement, lowest allowed and installed version; 1 if any installed version is not the lowest."""
    pinned = dict(re.findall(r"^([\w.-]+)==(\S+)$", constraints.read_text(), re.M))
    bad = 0
    print(f"{'requirement':<28} {'lowest':<12} installed")
    for req in requirements():
        name = canonicalize_name(req.name)
        try:
            have = version(req.name)
        except PackageNotFoundError:
            have = "missing"
        want = pinned.get(name)
        ok = have != "missing" and (want is None or Version(have) == Version(want))
        bad += not ok
        print(f"{str(req):<28} {want or '(none)':<12} {have}{'' if ok else '   <-- not the lowest'}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.lowest_deps", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="write the constraints file here")
    ap.add_argument("--check", type=Path, metavar="CONSTRAINTS",
                    help="compare the installed versions with this constraints file")
    args = ap.parse_args(argv)
    if not (args.out or args.check):
        ap.error("give --out FILE or --check FILE")
    if args.out:
        write(args.out)
    return check(args.check) if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
