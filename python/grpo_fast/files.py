"""Writing files so that a reader, or a process killed midway, sees the old content or the new and
never a part: write a temporary sibling, flush it to disk, rename it over the target."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary sibling of `path` (`.NAME.tmp-PID` + `suffix`, created empty) to write;
    when the block ends without an error it is synced and renamed over `path`, otherwise removed.
    `suffix` keeps an extension for writers that choose the format by it (matplotlib). Temporary
    siblings of the same pattern that killed processes left are removed first
    (`remove_abandoned_temps`)."""
    path = Path(path)
    remove_abandoned_temps(path, suffix)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")
    lock = _create_locked(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        if lock is not None:
            os.close(lock)
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with replacing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename in `path` durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def try_lock(fd: int) -> bool:
    """An exclusive, non-blocking `flock` on `fd`; False when another open file holds it. A file
    system without locks (or a platform without flock) counts as locked by us."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def process_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host (one of another user counts)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def remove_abandoned_temps(path: str | os.PathLike, suffix: str = "") -> list[Path]:
    """Removes the temporary siblings of `path` that `replacing` wrote for processes killed before
    the rename (`.NAME.tmp-PID` + `suffix`, exactly that pattern): only regular files that nobody
    holds locked (`replacing` locks its own while it runs, which protects a writer on another host
    or in another PID namespace) and whose PID is not alive on this host, checked after taking the
    lock. A live writer's file is never touched; a dead one's PID reused by an unrelated process
    keeps the file until that process ends. Returns what was removed."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.tmp-([0-9]+){re.escape(suffix)}")
    folder = path.parent
    removed: list[Path] = []
    try:
        names = os.listdir(folder if str(folder) else ".")
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        if _remove_if_abandoned(folder / name, int(m.group(1))):
            removed.append(folder / name)
    return removed


def _remove_if_abandoned(p: Path, pid: int) -> bool:
    import stat

    try:
        if not stat.S_ISREG(os.lstat(p).st_mode):  # never a link, a folder or a FIFO
            return False
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (ImportError, OSError):
            return False  # held by a live writer, or no way to tell: leave it
        if process_alive(pid):
            return False
        a, b = os.fstat(fd), os.lstat(p)
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):  # replaced since it was checked
            return False
        p.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _create_locked(tmp: Path) -> int | None:
    """Creates `tmp` empty and holds an exclusive lock on it (the descriptor to close when done),
    so that `remove_abandoned_temps` in another process leaves it alone; None where it cannot be
    created here (the caller's own write will say why)."""
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError:
        return None
    try_lock(fd)
    return fd
