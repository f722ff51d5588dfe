"""Sampling commands that keep what they finished (`generate`, `eval`): a run stopped by Ctrl-C,
SIGTERM, kill -9 or a crash loses at most the batch it was sampling, and `--resume` continues it.

The finished groups go, batch by batch, to a progress file beside the output, `OUTPUT.partial`
(JSON lines, never compressed): a header with the command and the options that decide what is
sampled, then one line per finished group, in input order:

    {"grpo_fast_partial":1,"command":"generate","options":{...}}
    {"i":0,"key":"<32 hex digits>","record":{...the output line...}}

`key` fingerprints the item (the prompt's record and the prompt the model was given), so a changed
input is refused instead of mixed with an earlier run. Each batch's lines are appended in one write
and synced before the next batch starts. The output is written only when every group is done, from
these lines, by the usual temporary sibling and rename (so it is byte for byte what a run that was
never stopped writes); then the progress file is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from grpo_fast.errors import ConfigError, DataError, GrpoIOError
from grpo_fast.files import fsync_dir, try_lock

SUFFIX = ".partial"
VERSION = 1
_HEADER_START = b'{"grpo_fast_partial"'
_ITEM = re.compile(rb'\{"i":(0|[1-9][0-9]*),"key":"([0-9a-f]{32})","record":(\{.*\})\}')


class Terminated(BaseException):
    """SIGTERM, raised in the main thread the way Ctrl-C raises KeyboardInterrupt (a BaseException,
    so that no `except Exception` on the way swallows it)."""


def exit_status(stop: BaseException) -> int:
    """The shell's status for a command stopped by a signal: 130 for Ctrl-C, 143 for SIGTERM."""
    return 143 if isinstance(stop, Terminated) else 130


def progress_path(output: str | os.PathLike[str]) -> Path:
    p = Path(output)
    return p.with_name(p.name + SUFFIX)


def keeps_progress(output: str | None) -> bool:
    """Progress is kept beside a file output; stdout and devices (`/dev/null`) are written as
    the records come."""
    if output is None or output == "-":
        return False
    try:
        return stat.S_ISREG(os.stat(output).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def fingerprint(*parts: Any) -> str:
    """32 hex digits identifying `parts` (JSON-like values; anything else by its repr)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def sampler_identity(sampler_opts: dict[str, Any], tool_overrides: dict[str, Any]) -> dict[str, Any]:
    """The sampler and tool options that decide the samples (where the tools' sandbox runs does
    not), as part of a command's resume options."""
    return {
        "sampler": sampler_opts.get("sampler"),
        "vllm_mode": sampler_opts.get("vllm_mode"),
        "tools": {k: v for k, v in tool_overrides.items() if k != "tool_sandbox"},
    }


def model_identity(model: str) -> Any:
    """What identifies a model for a resume: a local folder (or file) by the names, sizes and
    modification times of its files, so that a checkpoint saved again at the same path is told
    apart (and a folder moved elsewhere is still itself); a Hub id by the id."""
    p = Path(model)
    try:
        if p.is_dir():
            return {
                "files": sorted(
                    [e.name, e.stat().st_size, e.stat().st_mtime_ns] for e in os.scandir(p) if e.is_file()
                )
            }
        if p.is_file():
            st = p.stat()
            return {"files": [[p.name, st.st_size, st.st_mtime_ns]]}
    except OSError:
        pass
    return model


def batch_seed(seed: int, offset: int) -> int:
    """The seed of the batch starting at item `offset`: each batch draws from its own stream, so a
    resumed run samples the batches it still has to exactly as a run that never stopped."""
    digest = hashlib.sha256(f"grpo-fast batch {seed} {offset}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def batch_ranges(lo: int, hi: int, done: int, batch_size: int) -> list[tuple[int, int]]:
    """The batches [a, b) still to sample of items lo..hi when the first `done` items are finished,
    placed where a run that never stopped places them (every `batch_size` from `lo`): a batch some
    of whose items are finished (its last lines were cut off by a kill) is sampled whole again and
    its finished items are dropped, so the rest come out the same."""
    start = max(done, lo)
    if start >= hi:
        return []
    first = lo + (start - lo) // batch_size * batch_size
    return [(a, min(a + batch_size, hi)) for a in range(first, hi, batch_size)]


# ---------------------------------------------------------------------------------------------
# signals


class _SignalState(threading.local):
    deferring = 0
    pending: int | None = None


_signals = _SignalState()


def _stop(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _on_signal(signum: int, frame: Any) -> None:
    if _signals.deferring:
        _signals.pending = signum  # raised when the write in progress is on disk
        return
    raise _stop(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` and Ctrl-C `KeyboardInterrupt` in the main
    thread, except while a progress file is being appended and synced: a signal that arrives then
    is raised once that is done, so a batch is kept whole or not at all. A signal the process
    ignores (SIGINT under nohup) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s, h in old.items():
        if h is not signal.SIG_IGN:
            signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _deferred_signals() -> Iterator[None]:
    _signals.deferring += 1
    try:
        yield
    finally:
        _signals.deferring -= 1
        if not _signals.deferring and _signals.pending is not None:
            signum, _signals.pending = _signals.pending, None
            raise _stop(signum)


# ---------------------------------------------------------------------------------------------
# the progress file


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays (Parquet and datasets records may carry them).
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"a {type(value).__name__} is not JSON")


def dump_record(record: Mapping[str, Any], where: str) -> str:
    """`record` as one compact JSON line (no raw newline); a value JSON cannot hold (NaN, a
    non-string key, an object) is a DataError naming `where`."""
    try:
        line = json.dumps(
            record, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
        )
        line.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as e:
        raise DataError(f"{where}: cannot be written as JSON: {e}") from e
    return line


class PartialRun:
    """The finished items of a command's run: kept in `OUTPUT.partial` beside a file output (see
    the module), in memory otherwise. `keys` are the fingerprints of every item, in order;
    `options` what decides the samples. Items are added in order (`add`); `done` counts them.

    Opening an output's progress file: an exclusive lock on it keeps two commands from writing
    one output. A file with finished items is continued only with `resume` and only when its
    options and the keys of its items are this run's (else a ConfigError says what differs); a
    last line cut off by a kill is dropped (the only thing ever dropped, and said so in `notes`).
    A file with no finished item is started over. A file that is not a progress file is refused."""

    def __init__(
        self,
        output: str | None,
        *,
        command: str,
        options: Mapping[str, Any],
        keys: Sequence[str],
        resume: bool,
        unit: str = "groups",
    ):
        self.output = output
        self.keys = list(keys)
        self.unit = unit
        self.done = 0
        self.notes: list[str] = []
        self.path: Path | None = progress_path(output) if output and keeps_progress(output) else None
        self._memory: list[str] = []
        self._fd: int | None = None
        if self.path is None:
            if resume:
                raise ConfigError(
                    "--resume needs an output file: progress is kept beside it (not for stdout or a device)",
                    field="resume",
                )
            return
        self._open(command, _plain(options), resume)

    @property
    def total(self) -> int:
        return len(self.keys)

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    # -- opening ------------------------------------------------------------------------------
    def _open(self, command: str, options: dict[str, Any], resume: bool) -> None:
        assert self.path is not None
        path = self.path
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            except OSError as e:
                raise GrpoIOError(
                    f"{path}: cannot open the progress file: {e.strerror}", file=str(path)
                ) from e
            if not try_lock(fd):
                os.close(fd)
                raise ConfigError(
                    f"{path} is in use: another command is writing {self.output} now; wait for it "
                    "to end or choose another output",
                    field="output",
                )
            # The file locked must still be the one at the path (a run that held it may have
            # removed it when it finished, and another created a new one).
            try:
                a, b = os.fstat(fd), os.stat(path)
                same = (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
            except FileNotFoundError:
                same = False
            if same:
                if not stat.S_ISREG(a.st_mode):
                    os.close(fd)
                    raise self._foreign()
                break
            os.close(fd)
        self._fd = fd
        try:
            self._load(command, options, resume)
        except BaseException:
            self._release()
            raise

    def _load(self, command: str, options: dict[str, Any], resume: bool) -> None:
        assert self.path is not None and self._fd is not None
        path, fd = self.path, self._fd
        header_wanted = {"grpo_fast_partial": VERSION, "command": command, "options": options}
        with os.fdopen(os.dup(fd), "rb") as f:
            f.seek(0)
            first = f.readline()
            if not first:
                self._start_over(header_wanted)
                return
            if not first.endswith(b"\n"):
                # A header cut off by a kill: ours when it starts like one; nothing was finished.
                if _HEADER_START.startswith(first[: len(_HEADER_START)]):
                    self.notes.append(f"{path}: an earlier run left no finished {self.unit}; starting over")
                    self._start_over(header_wanted)
                    return
                raise self._foreign()
            try:
                header = json.loads(first)
            except ValueError:
                header = None
            if not isinstance(header, dict) or "grpo_fast_partial" not in header:
                raise self._foreign()
            if header.get("grpo_fast_partial") != VERSION:
                raise ConfigError(
                    f"{path} was written by another version of grpo-fast (format "
                    f"{header.get('grpo_fast_partial')!r}, this one reads {VERSION}): finish the run "
                    "with that version, or delete the file to start over",
                    field="resume",
                )
            done, end, torn, key_error = self._scan(f, len(first))
        if done == 0:
            if torn:
                self.notes.append(f"{path}: an earlier run left no finished {self.unit}; starting over")
            self._start_over(header_wanted)
            return
        if not resume:
            raise ConfigError(
                f"{path} holds {done} finished {self.unit} of an earlier run of {self.output} that did not "
                "finish: add --resume to continue it, or delete the file to start over",
                field="resume",
            )
        old = {"command": header.get("command"), **(header.get("options") or {})}
        new = {"command": command, **options}
        diff = _differences(old, new)
        if diff:
            raise ConfigError(
                f"cannot resume from {path}: the earlier run was made with other options ({'; '.join(diff)}); "
                "run it with the earlier options, or delete the file to start over",
                field="resume",
            )
        if key_error:
            raise ConfigError(
                f"cannot resume from {path}: {key_error}; delete the file to start over", field="resume"
            )
        if torn:
            # Whatever follows the last complete line is one line cut off mid-write by a kill.
            os.ftruncate(fd, end)
            os.fsync(fd)
            self.notes.append(
                f"{path}: dropped its last line ({torn} bytes), which a kill cut off while it was "
                f"being written; that {self.unit[:-1] if self.unit.endswith('s') else self.unit} is "
                "sampled again"
            )
        os.lseek(fd, 0, os.SEEK_END)
        self.done = done

    def _scan(self, f: Any, offset: int) -> tuple[int, int, int, str | None]:
        """Checks every item line after the header: (items, end of the last complete line, bytes of
        a cut-off last line, the first disagreement with this run's keys or None)."""
        assert self.path is not None
        done, end, key_error = 0, offset, None
        for raw in f:
            if not raw.endswith(b"\n"):
                return done, end, len(raw), key_error
            m = _ITEM.fullmatch(raw[:-1])
            record_ok = False
            if m is not None:
                try:
                    record_ok = isinstance(json.loads(m.group(3)), dict)
                except ValueError:
                    pass
            if not record_ok or int(m.group(1)) != done:  # type: ignore[union-attr]
                raise DataError(
                    f"{self.path}: line {done + 2} is not the progress line of item {done + 1}: the "
                    "file was changed by something else; move it away to start over",
                    file=str(self.path),
                    line=done + 2,
                )
            if key_error is None:
                if done >= len(self.keys):
                    key_error = (
                        f"it holds more {self.unit} ({done + 1} or more) than this run has ({len(self.keys)}): "
                        "the input or --limit changed"
                    )
                elif m.group(2).decode() != self.keys[done]:  # type: ignore[union-attr]
                    key_error = (
                        f"item {done + 1} is not the one the earlier run sampled (its prompt record or "
                        "prompt changed): the input changed"
                    )
            done += 1
            end += len(raw)
        return done, end, 0, key_error

    def _foreign(self) -> ConfigError:
        return ConfigError(
            f"{self.path} exists and is not a grpo-fast progress file; move it away or choose another output",
            field="output",
        )

    def _start_over(self, header: dict[str, Any]) -> None:
        assert self._fd is not None and self.path is not None
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        _write_all(self._fd, json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        os.fsync(self._fd)
        fsync_dir(self.path.parent)
        self.done = 0

    # -- adding and reading -------------------------------------------------------------------
    def add(self, start: int, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Keeps the records of items start.. (`start` must be `done`): written and synced before
        this returns. Returns their JSON lines."""
        if start != self.done:
            raise ValueError(f"items are added in order: expected item {self.done}, got {start}")
        if start + len(records) > self.total:
            raise ValueError(f"{start + len(records)} items added, the run has {self.total}")
        lines = [dump_record(r, f"the output record of item {start + j + 1}") for j, r in enumerate(records)]
        if self.path is None:
            self._memory.extend(lines)
        else:
            if self._fd is None:
                raise ValueError(f"{self.path} is closed")
            data = b"".join(
                b'{"i":%d,"key":"%s","record":%s}\n'
                % (start + j, self.keys[start + j].encode(), line.encode("utf-8"))
                for j, line in enumerate(lines)
            )
            with _deferred_signals():
                pos = os.lseek(self._fd, 0, os.SEEK_END)
                try:
                    _write_all(self._fd, data)
                    os.fsync(self._fd)
                except OSError as e:
                    # A short write (a full disk) must not stay as a cut-off line before the next.
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._fd, pos)
                    raise GrpoIOError(
                        f"{self.path}: cannot keep the finished {self.unit}: {e.strerror}",
                        file=str(self.path),
                    ) from e
        self.done += len(records)
        return lines

    def lines(self, lo: int = 0, hi: int | None = None) -> Iterator[str]:
        """The output lines of finished items lo..hi, in order (read back from the file)."""
        hi = self.done if hi is None else min(hi, self.done)
        if self.path is None:
            yield from self._memory[lo:hi]
            return
        with open(self.path, "rb") as f:
            f.readline()
            for i, raw in enumerate(f):
                if i >= hi:
                    break
                if i < lo:
                    continue
                m = _ITEM.fullmatch(raw.rstrip(b"\n"))
                if m is None or int(m.group(1)) != i:
                    raise DataError(
                        f"{self.path}: line {i + 2} changed while the run was writing it",
                        file=str(self.path),
                        line=i + 2,
                    )
                yield m.group(3).decode("utf-8")

    def records(self, lo: int = 0, hi: int | None = None) -> Iterator[dict[str, Any]]:
        for line in self.lines(lo, hi):
            yield json.loads(line)

    # -- ending -------------------------------------------------------------------------------
    def message(self, stop: BaseException | None = None) -> str:
        """What to tell the user when the run ends early (`stop`: the signal's exception)."""
        why = {KeyboardInterrupt: "stopped by Ctrl-C", Terminated: "stopped by SIGTERM"}.get(
            type(stop), "stopped"
        )
        if self.path is None:
            return (
                f"{why} after {self.done} of {self.total} {self.unit} (progress is kept only beside an "
                "output file)"
            )
        if self.done == 0:
            return f"{why}: no {self.unit} were finished yet; nothing to keep"
        return (
            f"{why}: {self.done} of {self.total} {self.unit} are finished and kept in {self.path}; run the same "
            "command with --resume to continue"
        )

    def discard(self) -> None:
        """The output is in place: the progress file goes."""
        if self.path is not None and self._fd is not None:
            self.path.unlink(missing_ok=True)
            fsync_dir(self.path.parent)
        self._release()

    def close(self) -> None:
        """Ends without the output: the progress file stays when it holds finished items."""
        if self.path is not None and self._fd is not None and self.done == 0:
            self.path.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PartialRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sample_batches(
    run: PartialRun,
    lo: int,
    hi: int,
    batch_size: int,
    seed: int,
    sample: Callable[[int, int], Sequence[Mapping[str, Any]]],
    kept: Callable[[list[str]], None] | None = None,
) -> None:
    """Samples the items lo..hi that `run` has not finished, in the batches a run that never
    stopped makes (`batch_ranges`), each from its own seed (`batch_seed` of its offset from `lo`,
    so two sides of a comparison draw the same streams), and keeps each batch's records in `run`
    before the next starts. `sample(a, b)` returns the output records of items a..b; `kept(lines)`
    gets the output lines of each batch once they are kept."""
    for a, b in batch_ranges(lo, hi, run.done, batch_size):
        _seed_torch(batch_seed(seed, a - lo))
        records = sample(a, b)
        if len(records) != b - a:
            raise ValueError(f"sampled {len(records)} records for {b - a} items")
        skip = run.done - a  # items of this batch finished before a kill cut the rest off
        lines = run.add(run.done, records[skip:])
        if kept is not None:
            kept(lines)


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """`items` in lists of `size` (the last one shorter)."""
    chunk: list[Any] = []
    for x in items:
        chunk.append(x)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _seed_torch(seed: int) -> None:
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _plain(value: Any) -> Any:
    """`value` as JSON would give it back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=repr))


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and "files" in a and "files" in b:
            changed = sorted(
                {f[0] for f in a["files"]} ^ {f[0] for f in b["files"]}
                | {f[0] for f in a["files"] if f not in b["files"]}
            )
            out.append(
                f"{k}: its files changed ({', '.join(changed[:4])}{', ...' if len(changed) > 4 else ''})"
            )
        else:
            out.append(f"{k}: {_show(a)} then, {_show(b)} now")
    return out


def _show(v: Any) -> str:
    if isinstance(v, dict) and "files" in v:
        return "a local folder"
    text = json.dumps(v, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


@contextlib.contextmanager
def run_until_stopped(run: PartialRun, console: Any) -> Iterator[None]:
    """The body of a sampling command: Ctrl-C and SIGTERM stop it (exit status 130 or 143) with what
    was kept and how to continue; an error keeps the finished items and says where they are."""
    try:
        with stop_on_signals():
            yield
    except (KeyboardInterrupt, Terminated) as stop:
        run.close()
        console.print(run.message(stop), markup=False, highlight=False, soft_wrap=True)
        sys.exit(exit_status(stop))
    except BaseException:
        if run.path is not None and run.done and not run.complete:
            console.print(
                f"{run.done} of {run.total} {run.unit} are finished and kept in {run.path}; the same "
                "command with --resume continues",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        run.close()
        raise
