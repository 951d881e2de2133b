"""Output paths of the command-line tools: checked before any work, written atomically, and
nothing removed that the tool did not create.

This module lives in ``rtl/`` because ``rtl.export`` and ``rtl.synth`` need it and ``rtl`` may
import neither ``golden`` nor ``sim``, while ``sim`` may import ``rtl``: so the one helper that
the tools of both packages share is here. It imports nothing else of spinpim's.

Checking (at the start of a tool, before any simulation or synthesis)
---------------------------------------------------------------------
* :func:`check_file`: a file that is written as a whole. Refused: an existing directory, an
  existing path that is not a regular file, a read-only file, and a parent directory that is a
  file, cannot be written in, or is missing and cannot be created.
* :func:`check_dir`: a directory that files are written into (other files in it are left
  alone). Refused: an existing file, a directory that cannot be written in, a missing directory
  that cannot be created.
* :func:`check_tree`: a directory that one tool owns as a whole (``rtl.export``). It must not
  exist, be empty, or be a directory that an earlier run of the same tool made and that holds
  nothing but what it wrote: the tool marks such a directory with :data:`MARKER`, a small text
  file that names the tool and every file it wrote. **An existing directory with anything else
  in it is refused**, with a message that says to give a new or empty directory or to remove it
  yourself; the tool never deletes a directory it did not make (``--out .`` in a folder of one's
  own files changes nothing).

Every refusal raises :class:`OutputPathError`, one line that names the option, the path, what
is wrong with it and what is allowed; the command lines print it and exit with code 2.

Writing (at the end)
--------------------
Every file is first written into a hidden *staging directory* next to its target,
``.<target name>.<pid>-<random>.spinpim-tmp``, under the target's own name, and then renamed
into place with ``os.replace``: a reader sees the old file or the new one, never a part, and no
glob of the project (``golden/models/*.npz``, ``build/reports/*.json``) ever lists a temporary
file, since none sits next to the targets under a name they match. :func:`write_tree` fills a
staging directory with every file and renames it into place as a whole (after moving a
directory it made before out of the way), or, for an empty directory, moves the files into it.
A failure or Ctrl-C removes the staging directory; so does SIGTERM while writing (it is turned
into ``SystemExit(143)`` for that time). A staging directory left by a process that no longer
runs (SIGKILL, power loss) is removed by the next check of the same target. Files and
directories get the modes the umask gives (0644 / 0755 under the usual 022), not ``mkstemp``'s
0600 / 0700.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from rtl.argparse_fix import install as _install_argparse_fix

# Every tool imports this module (its output checks, ``interruptible``): ``--option=--`` is the
# value ``--`` in all of them, rtl's included (rtl.argparse_fix).
_install_argparse_fix()

__all__ = ["MARKER", "UserError", "OutputPathError", "check_file", "check_dir", "check_tree",
           "write_files", "write_file", "json_text", "write_json", "write_tree",
           "EXIT_INTERRUPTED", "EXIT_TERMINATED", "EXIT_BROKEN_PIPE", "Terminated",
           "interruptible", "NAME_MAX", "PATH_MAX"]

#: Name of the file that marks a directory made by :func:`write_tree`.
MARKER = ".spinpim-outputs"

_STAGING_SUFFIX = ".spinpim-tmp"


class UserError(Exception):
    """A mistake in what the user asked for: printed as one line, exit code 2, no traceback."""


class OutputPathError(UserError):
    """An output path that cannot be written as asked."""


# ----------------------------------------------------------------------------------------------
# Checking

def _where(option: str | None, path: Path) -> str:
    return f"{option} {str(path)!r}" if option else repr(str(path))


#: The longest file name and path the checks accept, in bytes: Linux's NAME_MAX and PATH_MAX
#: (``os.pathconf`` gives the same on ext4 and tmpfs; a name the file system refuses would be an
#: ``OSError`` traceback after the work).
NAME_MAX, PATH_MAX = 255, 4096


def _check_name(where: str, path: Path) -> None:
    """A path the file system can hold: no NUL byte, no name over :data:`NAME_MAX` bytes, at
    most :data:`PATH_MAX` bytes in all."""
    text = str(path)
    if "\x00" in text:
        raise OutputPathError(f"{where} contains a NUL byte, which no file name may hold; give "
                              "a path without it")
    raw = os.fsencode(text)
    if len(raw) > PATH_MAX:
        raise OutputPathError(f"{where} is {len(raw)} bytes long; a path may have at most "
                              f"{PATH_MAX}")
    for part in path.parts:
        n = len(os.fsencode(part))
        if n > NAME_MAX:
            raise OutputPathError(f"{where} has a name of {n} bytes ({part[:20]!r}...); a file "
                                  f"or directory name may have at most {NAME_MAX}")


def _check_creatable(where: str, directory: Path) -> None:
    """``directory`` exists and can be written in, or can be created."""
    d, missing = directory, False
    while not d.is_dir():
        if d.exists() or d.is_symlink():
            what = "a file" if d.is_file() else "not a directory"
            raise OutputPathError(f"{where}: {str(d)!r} is {what}, where a directory is needed; "
                                  f"give a path under a directory")
        if d.parent == d:
            break
        d, missing = d.parent, True
    if not os.access(d, os.W_OK | os.X_OK):
        verb = f"cannot create {str(directory)!r}" if missing else "cannot write in it"
        raise OutputPathError(f"{where}: {verb}: directory {str(d)!r} is not writable; give a "
                              f"path in a directory you can write to")


def check_file(option: str | None, path, *, example: str = "out.json") -> Path:
    """Check that ``path`` can be written as one file; the path, or an OutputPathError.

    ``option`` names the command-line option in the message (None: none); ``example`` is a
    file name suggested when ``path`` is a directory. Changes nothing but removing staging
    directories of dead processes next to ``path``.
    """
    path = Path(path)
    where = _where(option, path)
    _check_name(where, path)
    if path.is_dir():
        raise OutputPathError(f"{where} is a directory; give a file path, e.g. "
                              f"{str(path / example)!r}")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise OutputPathError(f"{where} exists and is not a regular file; give a new path "
                                  f"or the path of a file to replace")
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"{where} is read-only; make it writable or give another path")
    _check_creatable(where, path.parent)
    _remove_stale(path)
    return path


def check_dir(option: str | None, path) -> Path:
    """Check that files can be written into the directory ``path`` (made if missing); the
    path, or an OutputPathError. Other files in it are left alone."""
    path = Path(path)
    where = _where(option, path)
    _check_name(where, path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{where} is a file, where a directory is needed; give a "
                              f"directory path")
    _check_creatable(where, path)
    return path


def _marked_files(path: Path, tool: str) -> list | None:
    """The files listed by ``path``'s MARKER if ``tool`` wrote it, else None."""
    try:
        lines = (path / MARKER).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0] != _marker_header(tool):
        return None
    return [ln for ln in lines[1:] if ln and not ln.startswith("#")]


def _marker_header(tool: str) -> str:
    return f"# written by {tool}: the directory is replaced as a whole by its next run"


def _tree_state(where: str, path: Path, tool: str, names=()) -> str:
    """``"new"``, ``"empty"`` or ``"ours"``, or an OutputPathError (``names``: the files the
    tool writes, for the message about an unmarked directory that holds only those)."""
    if not path.exists() and not path.is_symlink():
        return "new"
    if path.is_symlink():
        raise OutputPathError(f"{where} is a symbolic link, which would be replaced, not the "
                              f"directory it points to; give that directory's own path")
    if not path.is_dir():
        raise OutputPathError(f"{where} is a file, where a directory is needed; give a "
                              f"directory path")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputPathError(f"{where}: directory is not writable; give a path in a directory "
                              f"you can write to")
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        return "empty"
    listed = _marked_files(path, tool)
    if listed is None and names and set(entries) <= set(names):
        raise OutputPathError(f"{where} holds only files named as {tool} writes them but no "
                              f"{MARKER} that says it made them (an output from before the "
                              f"marker?); check and remove it yourself, then run again")
    if listed is None:
        count = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
        raise OutputPathError(f"{where} is a directory with {count} (e.g. "
                              f"{entries[0]!r}) that {tool} did not make; it would have to "
                              f"replace them: give a new or empty directory, or remove this "
                              f"one yourself")
    extra = [e for e in entries if e != MARKER and e not in listed]
    if extra:
        raise OutputPathError(f"{where} holds {extra[0]!r}, which {tool} did not write; move "
                              f"it away or give a new or empty directory")
    if path.resolve() == Path.cwd().resolve():
        raise OutputPathError(f"{where} is the current directory, which a new output would "
                              f"replace; run from its parent or give another directory")
    return "ours"


def check_tree(option: str | None, path, *, tool: str, names=()) -> Path:
    """Check that ``tool`` may write the directory ``path`` as a whole (module docstring); the
    path, or an OutputPathError. ``names``, the files the tool writes, only sharpen the
    message for a directory without the marker."""
    given = Path(path)
    where = _where(option, given)
    _check_name(where, given)
    path = Path(os.path.abspath(given))         # "." and ".." named by their parent
    _tree_state(where, path, tool, names)
    # the staging directory goes next to it
    _check_creatable(where, given.parent if given.name not in ("", "..") else path.parent)
    _remove_stale(path)
    return given


# ----------------------------------------------------------------------------------------------
# Staging

def _stale_pattern(target: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(target.name)}\.(\d+)-[^/]*{re.escape(_STAGING_SUFFIX)}")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_staging(staging: Path) -> None:
    """Remove a staging directory: its files, then itself (kept if anything else is in it)."""
    for entry in staging.iterdir() if staging.is_dir() else ():
        if entry.is_file() or entry.is_symlink():
            entry.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        staging.rmdir()


def _remove_stale(target: Path) -> None:
    """Remove the staging directories of ``target`` left by processes that no longer run."""
    parent = target.parent
    if not parent.is_dir() or not target.name:
        return
    pattern = _stale_pattern(target)
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            m = pattern.fullmatch(entry.name)
            if m and entry.is_dir() and not entry.is_symlink() and not _running(int(m[1])):
                _remove_staging(entry)


def _mode(base: int) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def _staging_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}-",
                                 suffix=_STAGING_SUFFIX, dir=target.parent))


def _term(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _term_raises():
    """SIGTERM raises SystemExit while writing, so that the cleanup runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.getsignal(signal.SIGTERM)
    if old is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _cannot_write(option: str | None, path: Path, e: OSError) -> OutputPathError:
    return OutputPathError(f"{_where(option, path)}: cannot write ({e.strerror or e})")


# ----------------------------------------------------------------------------------------------
# Writing

def write_files(writers: dict, *, option: str | None = None) -> list:
    """Write several files: ``{target path: text or write(tmp_path)}``; every ``write`` renders
    its file into ``tmp_path`` (a path with the target's name in a staging directory), and only
    when all have succeeded are they renamed into place. Returns the target paths.

    Raises
    ------
    OutputPathError
        Writing failed with an OSError (the message names ``option`` and the path); no
        target was changed unless the failure came while renaming.
    """
    targets = [Path(p) for p in writers]
    stagings: dict = {}
    path = targets[0] if targets else Path()
    try:
        with _term_raises():
            staged = []
            for path, write in zip(targets, writers.values(), strict=True):
                parent = path.parent.resolve()
                if parent not in stagings:
                    stagings[parent] = _staging_dir(path)
                tmp = stagings[parent] / path.name
                if isinstance(write, str):
                    tmp.write_text(write)
                else:
                    write(tmp)
                staged.append((tmp, path))
            for tmp, path in staged:
                os.replace(tmp, path)
    except OSError as e:
        raise _cannot_write(option, path, e) from None
    finally:
        for staging in stagings.values():
            _remove_staging(staging)
    return targets


def write_file(path, write: Callable[[Path], None] | str, *,
               option: str | None = None) -> Path:
    """Write one file atomically: its text, or ``write(tmp_path)`` renders it (see
    :func:`write_files`)."""
    return write_files({Path(path): write}, option=option)[0]


def json_text(data, *, sort_keys: bool = True) -> str:
    """``data`` as the tools write JSON: indented by 2, with a final newline."""
    return json.dumps(data, indent=2, sort_keys=sort_keys) + "\n"


def write_json(path, data, *, sort_keys: bool = True, option: str | None = None) -> Path:
    """Write ``data`` as :func:`json_text` into ``path`` atomically."""
    return write_files({Path(path): json_text(data, sort_keys=sort_keys)}, option=option)[0]


def write_tree(path, files: dict, *, tool: str, option: str | None = None) -> list:
    """Write the directory ``path`` as a whole: ``{file name: text}`` and :data:`MARKER`.

    ``path`` is checked again as :func:`check_tree` does (it may have changed since the tool
    started). A new path: the staging directory is renamed into it. An empty directory: the
    files are moved into it. A directory that ``tool`` wrote before: it is moved aside, the
    staging directory renamed into its place, and the files it listed removed. Returns the
    paths of the files (without the marker).
    """
    given = Path(path)
    where = _where(option, given)
    _check_name(where, given)
    path = Path(os.path.abspath(given))
    state = _tree_state(where, path, tool, files)
    marker = "\n".join([_marker_header(tool), *files]) + "\n"
    staging = old = None
    try:
        with _term_raises():
            staging = _staging_dir(path)
            for name, text in {**files, MARKER: marker}.items():
                (staging / name).write_text(text)
            if state == "empty":
                moved = []
                try:
                    for name in [*files, MARKER]:
                        os.replace(staging / name, path / name)
                        moved.append(path / name)
                except BaseException:
                    for p in moved:             # the directory goes back to empty
                        p.unlink(missing_ok=True)
                    raise
            else:
                if state == "ours":
                    old = staging.with_name(staging.name[:-len(_STAGING_SUFFIX)] + "-old"
                                            + _STAGING_SUFFIX)
                    os.rename(path, old)
                os.chmod(staging, _mode(0o777))
                try:
                    os.rename(staging, path)
                except BaseException:
                    if old is not None:         # put the earlier output back
                        os.rename(old, path)
                        old = None
                    raise
                staging = None
    except OSError as e:
        raise _cannot_write(option, given, e) from None
    finally:
        for leftover in (staging, old):
            if leftover is not None:
                _remove_staging(leftover)
    return [given / name for name in files]


# ----------------------------------------------------------------------------------------------
# Ctrl-C

#: Exit code of a tool stopped by Ctrl-C: 128 + SIGINT, what a shell reports for it.
EXIT_INTERRUPTED = 130
#: Exit status after SIGTERM (128 + 15, the shell's convention).
EXIT_TERMINATED = 143
#: Exit status when the reader of standard output went away (``tool | head``): 128 + SIGPIPE,
#: what a shell reports for a Unix tool stopped by it.
EXIT_BROKEN_PIPE = 141


class Terminated(BaseException):
    """SIGTERM, raised in the main thread by :func:`interruptible`'s handler: like Ctrl-C's
    ``KeyboardInterrupt`` it unwinds through every ``finally`` and ``except BaseException``, so
    staged outputs are removed, not left half-written."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _silence_stdout() -> None:
    """Point standard output at the null device: after a broken pipe, the interpreter's own
    flush at exit would otherwise print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def interruptible(tool: str, kept: str) -> Callable:
    """Decorate a tool's ``main(argv=None)``: Ctrl-C prints one line that names the tool, says
    it was interrupted and what was kept (``kept``), and returns :data:`EXIT_INTERRUPTED`,
    instead of a traceback; SIGTERM does the same with :data:`EXIT_TERMINATED` (the handler is
    installed while ``main`` runs in the main thread, the previous one restored after); a
    closed standard output (``tool | head``) returns :data:`EXIT_BROKEN_PIPE` silently. Every
    output is staged and renamed into place (above), so an interrupted tool leaves no partial
    file."""
    def wrap(main):
        @functools.wraps(main)
        def run(argv=None):
            previous = None
            if threading.current_thread() is threading.main_thread():
                previous = signal.signal(signal.SIGTERM, _raise_terminated)
            try:
                return main(argv)
            except KeyboardInterrupt:
                print(f"{tool}: interrupted (Ctrl-C); {kept}", file=sys.stderr)
                return EXIT_INTERRUPTED
            except Terminated:
                print(f"{tool}: terminated (SIGTERM); {kept}", file=sys.stderr)
                return EXIT_TERMINATED
            except BrokenPipeError:
                # ``tool | head``: the reader has what it wanted; stop quietly, as a Unix tool
                # does (staged outputs are removed on the way out, as for Ctrl-C)
                _silence_stdout()
                return EXIT_BROKEN_PIPE
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)
        return run
    return wrap
