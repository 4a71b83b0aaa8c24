# Runs first on whatever Python started the file, so it must parse on any of them, 2.7
# included: no annotations, f-strings or print(file=) here; mypy reads the type comments.
"""Refuse, in one line and exit code 1, a Python that cannot run etcdmgr.

Imported before anything else by etcdmgr.py, `python -m etcdmgr` and the one-file archive's
start-up (which also names the Python versions and the machine its native modules are for).
"""

import os
import sys

if sys.version_info >= (3, 5):  # typing exists there; only mypy needs it
    from typing import Optional, Sequence, Tuple

MINIMUM = (3, 11)
HOW_TO_GET = (
    "install python3.11 or newer with the system's package manager "
    "(apt-get install python3.11, dnf install python3.11, ...) and run the file with it"
)


def _dotted(version):
    # type: (Sequence[int]) -> str
    return ".".join(str(part) for part in version)


def _span(versions):
    # type: (Sequence[str]) -> str
    return versions[0] if len(versions) == 1 else "{0} to {1}".format(versions[0], versions[-1])


def problem(version, implementation, machine, executable, supported=None, arch=None, abiflags=""):
    # type: (Tuple[int, ...], str, str, str, Optional[Sequence[str]], Optional[str], str) -> Optional[str]
    """The one line that says why this interpreter cannot run etcdmgr, or None when it can.

    supported: the "X.Y" versions an archive holds native modules for (oldest first);
    arch: the machine (platform.machine()) they were built for; abiflags: sys.abiflags, whose
    "t" (free-threaded) or "d" (debug) builds load other native modules than the archive holds.
    """
    this = "this is {0} {1} ({2})".format(implementation, _dotted(version[:3]), executable or "python")
    wanted = "CPython " + (_span(supported) if supported else "{0} or newer".format(_dotted(MINIMUM)))
    if implementation != "CPython" or tuple(version[:2]) < MINIMUM:
        return "etcdmgr needs {0}; {1}: {2}.".format(wanted, this, HOW_TO_GET)
    if arch is not None and machine != arch:
        return "this etcdmgr.pyz is built for {0} Linux and this host is {1}: use the {1} build.".format(
            arch, machine or "unknown"
        )
    if supported and abiflags:
        return (
            "this etcdmgr.pyz holds native modules for the standard builds of {0}; {1}, a build "
            "with ABI flags '{2}' (free-threaded or debug): run it with the standard python{3}."
        ).format(wanted, this, abiflags, _dotted(version[:2]))
    if supported and _dotted(version[:2]) not in supported:
        newest = supported[-1]
        return (
            "this etcdmgr.pyz holds native modules for {0} only; {1}: run it with python{2} "
            "(python{2} etcdmgr.pyz ...), or build one for {3} with build_zipapp.py --python-version {3}."
        ).format(wanted, this, newest, _dotted(version[:2]))
    return None


_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "ironpython": "IronPython", "jython": "Jython"}


def _implementation():
    # type: () -> str
    # What platform.python_implementation() says, without importing platform (milliseconds
    # of every start): sys.implementation exists from Python 3.3 on.
    name = getattr(getattr(sys, "implementation", None), "name", None)  # type: Optional[str]
    if name is None:
        import platform

        return platform.python_implementation()
    return _IMPLEMENTATIONS.get(name, name)


def _machine():
    # type: () -> str
    if hasattr(os, "uname"):
        return os.uname()[4]  # what platform.machine() reads on POSIX
    import platform

    return platform.machine()


def require(supported=None, arch=None):
    # type: (Optional[Sequence[str]], Optional[str]) -> None
    """Exit 1 with the line of problem() unless this interpreter can run etcdmgr."""
    line = problem(
        sys.version_info[:3], _implementation(), _machine(), sys.executable,
        supported, arch, getattr(sys, "abiflags", ""),
    )  # fmt: skip
    if line is not None:
        sys.stderr.write(line + "\n")
        sys.exit(1)
