# grpo-sandboxd zygote: a pre-imported Python interpreter inside one slot's namespaces.
#
# The daemon starts one zygote per slot (pid 1 of the slot's PID namespace, fd 3 = control socket,
# fd 4 = this source, fd 5 = the native half, zygote_native.c). Plain runs and tests requests are
# served by the native loop (`zh_serve`), which never runs Python in the zygote: a child T forked
# ahead of time is pid 1 of a fresh PID namespace, has fresh mount/IPC/UTS namespaces (network
# too, if so configured), tmpfs and procfs, an unprivileged uid in a fresh user namespace and the
# seccomp filter, all set up natively, and waits for its request; the zygote passes the raw request
# bytes through, and T (`child_main`, below) compiles the program once and runs its units (tests)
# one after another, each writing to pipes of its own that the zygote captures. Runs with files
# go through a trusted harness G, forked ahead with the run's namespaces, which writes the files
# and hands the program to a T of its own. Untrusted code never runs in the zygote or in G, and
# expected outputs never enter the sandbox: only raw outputs and values come back, and the daemon
# judges them.
import ast
import base64
import builtins
import ctypes
import functools
import gc
import io
import json
import os
import resource
import select
import signal
import stat
import struct
import sys
import traceback
import types

CTL = 3
ZYGOTE_FILE = sys._getframe().f_code.co_filename  # frames of the harness, hidden from tracebacks
RES_FD = 3
REQ_FD = 4  # in T: the request pipe
UNIT_FD_BASE = 10  # in T: unit k's stdout, stderr and result pipes (zygote_native.c)
ZH_CHILD, ZH_CHILD_RUN = -1000, -1001  # the native half's answer in a forked T: tests / a plain run
# T's report on its result pipe: magic, exit code, flags (1 = compile error), pad, CPU ms, max RSS
# KiB; then the value JSON of a call/eval unit. Binary, so the native zygote reads it in place.
REPORT = struct.Struct("<4siIIdq")
# The zygote protocol's message kinds, as sandbox/src/protocol.rs chooses them (its tests hold
# these to its table): from the daemon, then from the zygote.
ZP_HELLO = ord("H")
ZP_RUN = ord("Q")
ZP_TESTS = ord("U")
ZP_RUN_WITH_FILES = ord("R")
ZP_COMPILED = ord("C")
ZP_PARSE = ord("P")
ZP_STOP = ord("S")
ZP_READY = ord("h")
ZP_UNIT = ord("o")
ZP_REPORT = ord("r")
ZP_DONE = ord("d")
HDR = struct.Struct("<IBI")  # payload length, kind, budget in ms
UNITS = struct.Struct("<III")  # what T is told before the request: kind, first unit, how many

CLONE_NEWPID = 0x20000000
PR_SET_DUMPABLE = 4

libc = ctypes.CDLL(None, use_errno=True)


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def write_all(fd, parts):
    """Writes the parts in order, as few syscalls as the pipe allows (writev)."""
    views = [memoryview(p) for p in parts if len(p)]
    while views:
        n = os.writev(fd, views)
        while n:
            if n >= len(views[0]):
                n -= len(views.pop(0))
            else:
                views[0], n = views[0][n:], 0


def send_frame(kind, payload):
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    write_all(CTL, [struct.pack("<IB", len(data), kind), data])


def recv_exact(view):
    got = 0
    while got < len(view):
        n = os.readv(CTL, [view[got:]])
        if n == 0:
            raise EOFError
        got += n


# ---- settings sent by the daemon in the hello frame ---------------------------------------------

CFG = {}
SECCOMP = None
H = None  # the native half


class ZhConfig(ctypes.Structure):
    _fields_ = [("isolated", ctypes.c_int32), ("uid", ctypes.c_int32), ("per_run_netns", ctypes.c_int32),
                ("own_pidns", ctypes.c_int32), ("max_open_files", ctypes.c_int32),
                ("units_per_process", ctypes.c_int32), ("max_output_bytes", ctypes.c_uint32),
                ("slot_filter_len", ctypes.c_uint32), ("slot_filter", ctypes.POINTER(SockFilter)),
                ("run_filter_len", ctypes.c_uint32), ("run_filter", ctypes.POINTER(SockFilter)),
                ("tmpfs_opts", ctypes.c_char_p), ("wall_factor", ctypes.c_int32)]


def load_native(own_pidns):
    """The native half (fd 5, a memfd from the daemon), loaded with the GIL kept held. It puts
    the zygote under the slot part of the seccomp policy at once."""
    global H
    H = ctypes.PyDLL("/proc/self/fd/5")
    os.close(5)
    for name, res, args in (
        ("zh_configure", ctypes.c_int, [ctypes.POINTER(ZhConfig)]),
        ("zh_error", ctypes.c_char_p, []),
        ("zh_spawn", ctypes.c_int, [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int32)]),
        ("zh_serve", ctypes.c_int, []),
        ("zh_child_units", ctypes.c_int32, []),
        ("zh_child_start", ctypes.c_int32, []),
        ("zh_child_count", ctypes.c_int32, []),
        ("zh_request", ctypes.c_void_p, []),
        ("zh_request_len", ctypes.c_uint32, []),
        ("zh_request_budget", ctypes.c_uint32, []),
        ("zh_die", None, []),
        ("zh_setup_run", ctypes.c_int, []),
        ("zh_harness_units", ctypes.c_int,
         [ctypes.POINTER(ctypes.c_int32), ctypes.c_int, ctypes.c_uint32, ctypes.c_uint32]),
        ("zh_compile_request", ctypes.py_object, [ctypes.c_int]),
        ("zh_finish_run", None, [ctypes.c_int32]),
        ("zh_stopped", ctypes.c_int, []),
    ):
        fn = getattr(H, name)
        fn.restype, fn.argtypes = res, args
    opts = f"size={CFG['tmpfs_bytes']},nr_inodes={CFG['tmpfs_inodes']},mode=1777".encode()
    cfg = ZhConfig(int(CFG["isolated"]), CFG.get("uid", 0), int(CFG.get("per_run_netns", True)), own_pidns,
                   CFG.get("max_open_files", 256), CFG.get("units_per_process", 16), CFG["max_output_bytes"],
                   len(SECCOMP["slot"]), SECCOMP["slot"], len(SECCOMP["run"]), SECCOMP["run"], opts,
                   CFG.get("wall_factor", 1))
    if H.zh_configure(ctypes.byref(cfg)) != 0:
        raise OSError(H.zh_error().decode())


def import_preloads(names):
    """Imports the preloaded modules. `random` registers an at-fork hook, its Python-level
    `Random.seed`, that every child runs; it is registered here as the same two steps made of
    C callables instead (the C seed from os.urandom, then `gauss_next = None`), which a child
    runs without a Python frame, so without touching (and copying) the pages of the code,
    globals and builtins that frame would use. Every other hook is registered as it asks."""
    real = os.register_at_fork

    def register(*, before=None, after_in_child=None, after_in_parent=None):
        inst = getattr(after_in_child, "__self__", None)
        cls = getattr(sys.modules.get("random"), "Random", None)
        if (before is None and after_in_parent is None and cls is not None and type(inst) is cls
                and getattr(after_in_child, "__func__", None) is cls.seed):
            real(after_in_child=functools.partial(cls.__mro__[1].seed, inst))  # _random.Random.seed
            real(after_in_child=functools.partial(setattr, inst, "gauss_next", None))
            return
        kw = {k: v for k, v in (("before", before), ("after_in_child", after_in_child),
                                ("after_in_parent", after_in_parent)) if v is not None}
        real(**kw)

    os.register_at_fork = register
    try:
        for name in names:
            try:
                __import__(name)
            except Exception:  # a missing optional module must not stop the slot
                pass
    finally:
        os.register_at_fork = real


def load_hello():
    global SECCOMP
    hdr = bytearray(HDR.size)
    recv_exact(memoryview(hdr))
    n, _, _ = HDR.unpack(hdr)
    body = bytearray(n)
    recv_exact(memoryview(body))
    CFG.update(json.loads(bytes(body)))
    SECCOMP = {}
    for part in ("slot", "run"):  # seccomp.rs: the zygote's part and every child's
        raw = bytes.fromhex(CFG[f"seccomp_{part}_hex"])
        SECCOMP[part] = (SockFilter * (len(raw) // 8)).from_buffer_copy(raw)
    import_preloads(CFG.get("preload", []))
    warm_up()
    # A child's first unit finds its process state ready: stdio wrappers over fds 0-2 (unread,
    # unwritten; the zygote never uses them) and argv, set here once rather than after each fork.
    sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = new_stdio()
    sys.argv = ["main.py"]
    os.environ.clear()  # exec'd with none, but the interpreter's locale coercion adds LC_CTYPE
    # Everything alive now is the zygote's for good: keep the collector from walking (and so
    # writing to, and copying) those pages in every forked child.
    gc.collect()
    gc.freeze()
    libc.malloc_trim(0)


# ---- the untrusted child T -----------------------------------------------------------------------

def close_except(keep):
    """Closes every fd from 4 up except `keep`: a forked process must not hold another
    process's pipe ends (a stray write end keeps a reader from ever seeing EOF)."""
    lo = 4
    for fd in sorted(k for k in keep if k >= 4):
        os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 1 << 16)


def read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def new_stdio(fds=(0, 1, 2)):
    """Text streams over fds 0, 1 and 2 as a program expects them."""
    return (
        io.TextIOWrapper(io.BufferedReader(io.FileIO(fds[0], "r", closefd=False)), encoding="utf-8",
                         errors="surrogateescape"),
        io.TextIOWrapper(io.BufferedWriter(io.FileIO(fds[1], "w", closefd=False)), encoding="utf-8",
                         errors="surrogateescape"),
        io.TextIOWrapper(io.BufferedWriter(io.FileIO(fds[2], "w", closefd=False)), encoding="utf-8",
                         errors="backslashreplace", line_buffering=True),
    )


# Programs that take the paths most runs take: stdin and stdout both ways, numbers, a function, a
# traceback. Trusted: only the zygote's own code runs in the zygote.
WARM_UP = (
    "import sys\nprint(sys.stdin.readline().strip()[::-1])\n",
    "a, b = map(int, input().split())\nprint(a + b)\n",
    "import sys\ndata = sys.stdin.read().split()\nsys.stdout.write(' '.join(sorted(data)) + '\\n')\n",
    "def f(n):\n    return [i * i for i in range(n)]\nprint(sum(f(int(input().split()[0]))), f'{1.5:.2f}')\n",
    "x = int(input().split()[1])\nraise ValueError(x)\n",
)


def warm_up(rounds=30):
    """Runs a child's code path (compile, a fresh __main__, stdio, the report) on WARM_UP in the
    zygote itself, so that what CPython creates lazily on a first use (codec and type-attribute
    caches, the specialized bytecode of every function a run goes through) exists before the fork
    instead of being created, and its pages copied, in every child."""
    main = sys.modules.get("__main__")
    random = sys.modules.get("random")
    for _ in range(rounds):
        for src in WARM_UP:
            fds = [*os.pipe(), *os.pipe(), *os.pipe()]
            os.write(fds[1], b"3 4\n")
            os.close(fds[1])
            sys.stdin, sys.stdout, sys.stderr = new_stdio((fds[0], fds[3], fds[3]))
            finish_unit(PROGRAM_UNIT, compile_program(src, fds[3], fds[5]), fds[5])
            for fd in (fds[0], fds[2], fds[3], fds[4], fds[5]):
                os.close(fd)
        if random is not None:  # what its at-fork hook runs in every child
            random.seed()
    sys.modules["__main__"] = main
    sys.stdin = sys.stdout = sys.stderr = None


def prepare_process():
    """A clean process state for a unit after the first (the first finds it set up by the zygote
    and by zh_spawn: stdio, argv, cwd, an empty environment). Random, when preloaded, reseeds
    itself in every forked child (an at-fork hook of its own)."""
    os.chdir("/tmp")
    os.environ.clear()
    sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = new_stdio()
    sys.argv = ["main.py"]


def stdin_memfd(stdin_text, fd):
    """Writes a unit's stdin into its memfd `fd` (made by the native half before the run filter,
    which denies memfd_create) and rewinds it: before the file-size limit applies, so a stdin
    may be larger than the files a program may write."""
    view = memoryview(stdin_text.encode("utf-8", "surrogateescape"))
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def enter_unit(lim, units=1):
    """The request-dependent hard limits. The CPU limit covers every unit this process runs
    (the harness enforces each unit's own deadline)."""
    for res, val in (
        (resource.RLIMIT_CPU, lim["cpu_s"] * units),
        (resource.RLIMIT_AS, lim["memory_bytes"]),
        (resource.RLIMIT_NPROC, lim["max_processes"]),
        (resource.RLIMIT_FSIZE, lim["max_file_bytes"]),
        (resource.RLIMIT_NOFILE, lim["max_open_files"]),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_MEMLOCK, 0),
        (resource.RLIMIT_MSGQUEUE, 0),
    ):
        resource.setrlimit(res, (val, val))  # soft = hard: the program cannot raise it back


def encode(value, depth=0):
    """Plain data only, checked by exact type, so an object with a forged __eq__ cannot pass."""
    if depth > 100:
        raise ValueError("value nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -(2**53) < value < 2**53 else {"$int": str(value)}
    if t is float:
        if value != value or value in (float("inf"), float("-inf")):
            return {"$float": repr(value)}
        return value
    if t is list:
        return [encode(v, depth + 1) for v in value]
    if t is tuple:
        return {"$tuple": [encode(v, depth + 1) for v in value]}
    if t is dict:
        return {"$dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if t is set:
        return {"$set": [encode(v, depth + 1) for v in value]}
    if t is frozenset:
        return {"$frozenset": [encode(v, depth + 1) for v in value]}
    if t is bytes:
        return {"$bytes": base64.b64encode(value).decode()}
    raise TypeError(f"value of type {t.__name__} is not plain data")


def print_exc(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == ZYGOTE_FILE:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def exec_program(code_obj, mod):
    """Returns an exit code, or None when the program ran to its end."""
    try:
        exec(code_obj, mod.__dict__)
        return None
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code & 0xFF
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException as exc:
        print_exc(exc)
        return 1


RECURSION_LIMIT = sys.getrecursionlimit()


def reset_unit_state():
    """What one unit leaves behind that would change how the next unit of the same process
    runs: its module, stdio wrappers, working directory, environment, recursion limit, alarm."""
    prepare_process()
    sys.setrecursionlimit(RECURSION_LIMIT)
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)


def join_threads():
    """A unit ends when the threads it started end (as a program ends), e.g. the common
    `threading.Thread(target=main).start()` with a big stack."""
    threading = sys.modules.get("threading")
    if threading is None:
        return
    me = threading.current_thread()
    for t in threading.enumerate():
        if t is not me and not t.daemon:
            t.join()


def end_unit_io():
    """A unit's end: its threads joined, its buffered output flushed (a failure there is the
    program's, and its output is what it is)."""
    try:
        join_threads()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass


def fresh_main():
    """A new __main__ module for a unit's program."""
    mod = types.ModuleType("__main__")
    mod.__builtins__ = builtins
    mod.__file__ = "main.py"
    sys.modules["__main__"] = mod
    return mod


def run_unit(unit, code_obj):
    """Runs one unit (a program run or a call) in a fresh __main__; returns its exit code and,
    for a call unit, the encoded result. (Test-code units are `eval_unit`'s.)"""
    mod = fresh_main()
    rc = exec_program(code_obj, mod)
    mode = unit["mode"]
    if mode == "program":
        return (rc or 0), None
    if rc is not None:  # call tests need the program to finish its definitions
        return (rc if rc else 1), None
    try:
        fn = mod.__dict__[unit["fn"]]
        args = json.loads(unit["args"])
        kwargs = json.loads(unit.get("kwargs") or "{}")
        return 0, {"values": [encode(fn(*args, **kwargs))]}
    except BaseException as exc:
        print_exc(exc)
        return 0, {"error": f"{type(exc).__name__}: {exc}"[:2000]}


# ---- test code against the program: the checker process C --------------------------------------
#
# Test code (HumanEval's `check(candidate)`, MBPP's asserts) never runs in the process that ran the
# program: a program can patch anything in its own process (builtins, `math.isclose`, the type
# slots through ctypes) and return objects that compare equal to anything. Before any of the
# program runs, T forks C, which turns non-dumpable (so T, same uid but without capabilities,
# cannot open its /proc files or memory) and keeps the only copy of the result pipes of the
# test-code units. C runs the test code in a namespace of its own with its own builtins; a name
# the test code takes from the program (`candidate`, the entry point, helpers such as HumanEval's
# `poly`) is bound to a proxy that asks T to call the program's function. Arguments go to T, and
# the return value comes back, only as exact-type plain data (`encode`), which C rebuilds into
# fresh objects of the built-in types: an object with a forged `__eq__`, `__abs__` or `__bool__`
# never reaches the checking code, and nothing the program patched is what the checking code
# calls. What T sends is the program's word and is treated so: malformed data is a failure.

CALL_MSG_CAP = 1 << 26  # one message between T and C; larger values fail the test


def send_msg(fd, obj):
    data = json.dumps(obj).encode()
    write_all(fd, [struct.pack("<I", len(data)), data])


def recv_msg(fd):
    """One length-prefixed JSON message, or None at EOF (the other side is gone)."""
    hdr = read_exact_fd(fd, 4)
    if hdr is None:
        return None
    (n,) = struct.unpack("<I", hdr)
    if n > CALL_MSG_CAP:
        raise ValueError("message from the program is too large")
    data = read_exact_fd(fd, n)
    if data is None:
        return None
    return json.loads(data)


def read_exact_fd(fd, n):
    parts, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def decode(value, depth=0):
    """Plain data rebuilt from `encode`'s form: only built-in types, made here, whatever the
    JSON says (anything else is an error)."""
    if depth > 100:
        raise ValueError("value nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str or t is int or t is float:
        return value
    if t is list:
        return [decode(v, depth + 1) for v in value]
    if t is dict and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$int" and type(inner) is str:
            return int(inner)
        if tag == "$float" and type(inner) is str:
            return float(inner)
        if tag == "$bytes" and type(inner) is str:
            return base64.b64decode(inner, validate=True)
        if type(inner) is list:
            items = [decode(v, depth + 1) for v in inner]
            if tag == "$tuple":
                return tuple(items)
            if tag == "$set":
                return set(items)
            if tag == "$frozenset":
                return frozenset(items)
            if tag == "$dict" and all(type(p) is list and len(p) == 2 for p in items):
                return {k: v for k, v in items}
    raise ValueError("the program's value is not plain data")


class ProgramError(Exception):
    """An exception of the program's that is not a built-in exception class."""


def program_exception(err):
    """The exception a proxy raises for the program's: its built-in class where it names one
    (a check may expect a ValueError), never one that is not an Exception (SystemExit)."""
    name, text = (err.get("type"), err.get("message")) if type(err) is dict else (None, None)
    cls = getattr(builtins, name, None) if type(name) is str else None
    text = text if type(text) is str else "the program failed"
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(text)
        except Exception:
            pass
    return ProgramError(f"{name}: {text}" if type(name) is str else text)


class ProgramFunction:
    """In C: a function of the program, called in T with plain data."""

    __slots__ = ("__name__", "_rpc")

    def __init__(self, name, rpc):
        self.__name__, self._rpc = name, rpc

    def __call__(self, *args, **kwargs):
        reply = self._rpc({"op": "call", "name": self.__name__, "args": [encode(a) for a in args],
                           "kwargs": {k: encode(v) for k, v in kwargs.items()}})
        if type(reply) is not dict:
            raise ProgramError("malformed answer from the program")
        if "error" in reply:
            raise program_exception(reply["error"])
        # The program may change its list, dict or set arguments in place, as a check may expect.
        after = reply.get("args")
        if type(after) is list and len(after) == len(args) + len(kwargs):
            for old, new in zip([*args, *kwargs.values()], after, strict=True):
                if new is not None and type(old) in (list, dict, set):
                    new = decode(new)
                    if type(new) is type(old) and new != old:
                        if type(old) is list:
                            old[:] = new
                        else:
                            old.clear()
                            old.update(new)
        return decode(reply.get("value"))

    def __repr__(self):
        return f"<program function {self.__name__}>"


def fork_checker(units, evals, n_fds):
    """T, before any of the program runs: forks C for the test-code units `evals` and gives up
    its own copies of their result pipes. Returns T's ends of the call pipes."""
    calls_r, calls_w = os.pipe()  # C -> T
    back_r, back_w = os.pipe()  # T -> C
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
            keep = {calls_w, back_r} | {UNIT_FD_BASE + 3 * k + j for k in evals for j in range(3)}
            close_except(keep)
            checker_main(units, evals, calls_w, back_r)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(calls_w)
    os.close(back_r)
    for k in evals:
        os.close(UNIT_FD_BASE + 3 * k + 2)
    return calls_r, back_w


def checker_main(units, evals, calls_w, back_r):
    """C: for each test-code unit, waits for T to have run the program (its exit code comes
    first), runs the unit's test code against it, and reports on the unit's result pipe."""
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    for k in evals:
        ready = recv_msg(back_r)
        if type(ready) is not dict:
            return  # T is gone: the unit has no report
        out, err, res = (UNIT_FD_BASE + 3 * k + j for j in range(3))
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = new_stdio()
        t = resource.getrusage(resource.RUSAGE_SELF)
        rc, value, program_cpu = ready.get("rc"), None, ready.get("cpu_ms")
        if rc is None:
            spent = [0.0]
            value = check_unit(units[k], lambda req, spent=spent: checker_rpc(req, calls_w, back_r, spent))
            program_cpu = (program_cpu if type(program_cpu) is float else 0.0) + spent[0]
        else:
            rc = rc if type(rc) is int and rc else 1
        end_unit_io()
        u = resource.getrusage(resource.RUSAGE_SELF)
        cpu_ms = (u.ru_utime + u.ru_stime - t.ru_utime - t.ru_stime) * 1000.0
        if type(program_cpu) is float and 0 <= program_cpu < 1e12:
            cpu_ms += program_cpu
        write_all(res, [REPORT.pack(b"GZR1", rc or 0, 0, 0, cpu_ms, u.ru_maxrss), json.dumps(value).encode()])
        for fd in (1, 2):
            os.dup2(null, fd)
        for fd in (out, err, res):
            os.close(fd)
        # Only now may T go on: T is pid 1 of the namespace, and its exit would kill C.
        send_msg(calls_w, {"op": "done"})


def checker_rpc(req, calls_w, back_r, spent):
    send_msg(calls_w, req)
    reply = recv_msg(back_r)
    if reply is None:
        raise ProgramError("the program's process ended")
    if type(reply) is dict and type(reply.get("cpu_ms")) is float and 0 <= reply["cpu_ms"] < 1e9:
        spent[0] += reply["cpu_ms"]
    return reply


def check_unit(unit, rpc):
    """C: one test-code unit in a fresh namespace: the program's names the test code uses (its
    functions as proxies, plain values rebuilt, modules imported here), then the setup, then the
    operand expressions. Returns the values or the error, as the daemon reads them."""
    ns = {"__builtins__": builtins, "__name__": "__main__"}
    try:
        names = unit.get("names") or []
        if names:
            found = rpc({"op": "names", "names": names})
            for name, kind in (found.get("names") or {}).items() if type(found) is dict else ():
                if type(name) is not str or name not in names or type(kind) is not dict:
                    continue
                if kind.get("function"):
                    ns[name] = ProgramFunction(name, rpc)
                elif "value" in kind:
                    ns[name] = decode(kind["value"])
                elif type(kind.get("module")) is str:
                    try:
                        ns[name] = __import__(kind["module"])
                    except Exception:
                        pass
        if unit.get("setup"):
            exec(compile(unit["setup"], "<test>", "exec"), ns)
        return {"values": [encode(eval(compile(e, "<test>", "eval"), ns)) for e in unit["exprs"]]}
    except BaseException as exc:
        print_exc(exc)
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}


def serve_checker(ns, calls_r, back_w):
    """T: answers C's requests with the program's namespace `ns` until C is done with the unit."""
    while True:
        try:
            req = recv_msg(calls_r)
        except ValueError:
            req = None
        if type(req) is not dict or req.get("op") == "done":
            return
        t = resource.getrusage(resource.RUSAGE_SELF)
        if req.get("op") == "names":
            reply = {"names": program_names(ns, req.get("names") or [])}
        else:
            reply = call_program(ns, req)
        u = resource.getrusage(resource.RUSAGE_SELF)
        reply["cpu_ms"] = (u.ru_utime + u.ru_stime - t.ru_utime - t.ru_stime) * 1000.0
        try:
            send_msg(back_w, reply)
        except (OSError, TypeError, ValueError):
            return


def program_names(ns, names):
    out = {}
    for name in names:
        if type(name) is not str or name not in ns:
            continue
        v = ns[name]
        if type(v) is types.ModuleType:
            out[name] = {"module": v.__name__}
        elif callable(v):
            out[name] = {"function": True}
        else:
            try:
                out[name] = {"value": encode(v)}
            except Exception:
                pass  # not plain data: the test code sees no such name
    return out


def call_program(ns, req):
    try:
        fn = ns[req["name"]]
        args = [decode(a) for a in req["args"]]
        kwargs = {k: decode(v) for k, v in req["kwargs"].items()}
        value = encode(fn(*args, **kwargs))
        after = []
        for a in [*args, *kwargs.values()]:
            try:
                after.append(encode(a) if type(a) in (list, dict, set) else None)
            except Exception:
                after.append(None)
        return {"value": value, "args": after}
    except BaseException as exc:
        print_exc(exc)
        return {"error": {"type": type(exc).__name__, "message": str(exc)[:2000]}}


def eval_unit(code_obj, link):
    """T: a test-code unit. Runs the program in a fresh __main__, tells C how that went, and
    serves C's calls until C is done."""
    t = resource.getrusage(resource.RUSAGE_SELF)
    mod = fresh_main()
    rc = exec_program(code_obj, mod)
    u = resource.getrusage(resource.RUSAGE_SELF)
    cpu_ms = (u.ru_utime + u.ru_stime - t.ru_utime - t.ru_stime) * 1000.0
    calls_r, back_w = link
    try:
        send_msg(back_w, {"rc": rc, "cpu_ms": cpu_ms})
    except OSError:
        return 1
    serve_checker(mod.__dict__, calls_r, back_w)  # until C has reported the unit
    end_unit_io()
    return rc or 0


def become_child(kind):
    """In a T forked by the native half, already isolated, unprivileged, under seccomp, through
    the interpreter's after-fork bookkeeping, and with its request's header read: runs a plain
    run (`kind` ZH_CHILD_RUN) or the units of a tests request, then exits."""
    try:
        if kind == ZH_CHILD_RUN:
            run_program()
        child_main(H.zh_child_units(), H.zh_child_start(), H.zh_child_count())
    except BaseException as exc:
        try:
            os.write(UNIT_FD_BASE + 1 if kind == ZH_CHILD else 2,
                     f"sandbox setup failed: {type(exc).__name__}: {exc}\n".encode())
        finally:
            os._exit(111)
    os._exit(112)


PROGRAM_UNIT = {"mode": "program"}


def run_program():
    """A plain run, set up natively (hard limits; stdin on fd 0, the unit's stdout, stderr and
    result pipes on 1, 2, 3): compiles the source (the rest of the request) and runs it; the
    native half reports and exits."""
    code_obj = compile_program(None, 2, RES_FD)
    rc = exec_program(code_obj, fresh_main())
    end_unit_io()
    H.zh_finish_run(rc or 0)


def compile_program(source, err_fd, res_fd):
    """`source` None: a plain run's, read from REQ_FD and compiled by the native half."""
    try:
        if source is None:
            return H.zh_compile_request(sys.version_info.minor)
        return compile(source, "main.py", "exec", dont_inherit=True)
    except BaseException as exc:  # the program's failure (every unit's), not the sandbox's
        text = "".join(traceback.format_exception_only(type(exc), exc))
        os.write(err_fd, text.encode())
        os.write(res_fd, REPORT.pack(b"GZR1", 1, 1, 0, 0.0, 0) + b"null")
        os._exit(1)


def finish_unit(unit, code_obj, res_fd=RES_FD):
    """Runs one unit whose stdio and result pipe are in place, reports on the result pipe (exit
    code, CPU, RSS, the value of a call/eval unit), returns the exit code."""
    t = resource.getrusage(resource.RUSAGE_SELF)
    rc, value = run_unit(unit, code_obj)
    end_unit_io()
    u = resource.getrusage(resource.RUSAGE_SELF)
    cpu_ms = (u.ru_utime + u.ru_stime - t.ru_utime - t.ru_stime) * 1000.0
    view = memoryview(REPORT.pack(b"GZR1", rc, 0, 0, cpu_ms, u.ru_maxrss) + json.dumps(value).encode())
    while view:
        view = view[os.write(res_fd, view):]
    return rc


def child_main(n_fds, start, count):
    """T: runs units `start .. start + count` of the tests request on REQ_FD one after another,
    unit k writing to its own stdout, stderr and result pipes (UNIT_FD_BASE + 3k ...), then
    exits. Every unit starts from a fresh __main__ and fresh stdio; a unit that kills the
    process ends the batch, and the harness runs the remaining units in a new process."""
    msg = json.loads(read_all(REQ_FD))
    os.close(REQ_FD)
    units, lim = msg["units"][start:start + count], msg["limits"]
    # Above every unit's pipes (fds 3 and 4 are free now, but each unit's result pipe takes 3).
    stdins = [stdin_memfd(unit.get("stdin", ""), UNIT_FD_BASE + 3 * n_fds + k) for k, unit in enumerate(units)]
    os.closerange(UNIT_FD_BASE + 3 * n_fds + len(units), UNIT_FD_BASE + 4 * n_fds)  # unused stdins
    if msg.get("spawn"):
        enter_unit(lim)  # each program spawned gets the per-unit limits; T itself uses little
        spawn_units(msg["argv"], msg.get("env"), stdins, n_fds)
    enter_unit(lim, len(units))
    if msg.get("argv"):
        exec_unit(msg["argv"], stdins[0], msg.get("env"))
    null = os.open("/dev/null", os.O_RDWR)
    code = msg["code"]
    del msg
    code_obj = compile_program(code, UNIT_FD_BASE + 1, UNIT_FD_BASE + 2)
    # Compiling ran none of the program: C is forked from a process the program has not touched.
    evals = [k for k, unit in enumerate(units) if unit["mode"] == "eval"]
    link = fork_checker(units, evals, n_fds) if evals else None
    rc = 0
    for k, unit in enumerate(units):
        is_eval = unit["mode"] == "eval"
        for j, target in enumerate((1, 2, RES_FD)):  # unit k's stdout, stderr, result pipe
            if is_eval and target == RES_FD:
                continue  # C holds the only copy
            os.dup2(UNIT_FD_BASE + 3 * k + j, target)
            os.close(UNIT_FD_BASE + 3 * k + j)
        os.dup2(stdins[k], 0)
        os.close(stdins[k])
        if k:
            reset_unit_state()
        rc = eval_unit(code_obj, link) if is_eval else finish_unit(unit, code_obj)
        for fd in (0, 1, 2, RES_FD):  # EOF on this unit's pipes tells the harness it ended
            os.dup2(null, fd)
    os._exit(rc)


# A compiled program's (and its compiler's) whole environment: the zygote's is empty.
EXEC_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}


def exec_unit(argv, stdin_fd, env=None):
    """T becomes the unit's program (a compiler, a compiled binary, a runtime): stdin, stdout
    and stderr are the unit's, nothing else stays open (the result pipe neither: with no report,
    the harness takes the exit status and rusage from the kernel), the limits are T's hard
    ones, the environment the sandbox's fixed one plus the language's `env`."""
    for j, target in enumerate((1, 2)):
        os.dup2(UNIT_FD_BASE + j, target)
    os.dup2(stdin_fd, 0)
    os.closerange(3, 1 << 16)
    try:
        os.execve(argv[0], argv, {**(env or {}), **EXEC_ENV})
    except OSError as exc:
        os.write(2, f"cannot run {argv[0]}: {exc.strerror}\n".encode())
    os._exit(127)


REPORT_SIGNALED = 2  # zygote_native.c: the report's rc is the signal that ended the program
# Signals a program starts with at their default action (Python ignores SIGPIPE and SIGXFSZ;
# T ignores SIGINT, which a program could send its pid 1).
DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT)


def spawn_units(argv, env, stdins, n_fds):
    """T as a runner: one fresh process per unit (posix_spawn, so no copy of this interpreter's
    page tables), each with the unit's stdin, stdout and stderr, reported on the unit's result
    pipe when it has exited; whatever it left running is killed first (T is pid 1 of the PID
    namespace, so kill(-1) reaches every other process in it and nothing outside). A unit past
    its deadline or over the output cap is the harness's to cut: it kills T, and runs the
    remaining units in a new one. T turns non-dumpable first, so a program cannot reach it
    through /proc (ptrace is denied by the filter either way)."""
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = {**(env or {}), **EXEC_ENV}
    for fd in range(3, UNIT_FD_BASE + 4 * n_fds):
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass
    for k, stdin in enumerate(stdins):
        out, err, res = (UNIT_FD_BASE + 3 * k + j for j in range(3))
        rc, flags, cpu_ms, rss = 127, 0, 0.0, 0
        try:
            pid = os.posix_spawn(argv[0], argv, env, setsigdef=DEFAULT_SIGNALS, file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, err, 2)])
        except OSError as exc:
            os.write(err, f"cannot run {argv[0]}: {exc.strerror}\n".encode())
        else:
            _, status, ru = os.wait4(pid, 0)
            if os.WIFSIGNALED(status):
                rc, flags = os.WTERMSIG(status), REPORT_SIGNALED
            else:
                rc = os.waitstatus_to_exitcode(status)
            cpu_ms, rss = (ru.ru_utime + ru.ru_stime) * 1000.0, ru.ru_maxrss
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while True:  # the stragglers, so that none holds the unit's pipes
                try:
                    os.wait()
                except ChildProcessError:
                    break
        write_all(res, [REPORT.pack(b"GZR1", rc, flags, 0, cpu_ms, rss), b"null"])
        for fd in (out, err, res, stdin):  # EOF on the unit's pipes: the harness goes on
            os.close(fd)
    os._exit(0)


# ---- the trusted harness G -----------------------------------------------------------------------

def write_request_files(files, mode=0o644):
    """Files into the run's /tmp, owned by the sandbox's user: text, or bytes (a build)."""
    uid = CFG["uid"]
    for name, text in (files or {}).items():
        path = os.path.join("/tmp", name)
        parent = "/tmp"
        for part in name.split("/")[:-1]:  # directories the program may write into, too
            parent = os.path.join(parent, part)
            if not os.path.isdir(parent):
                os.mkdir(parent, 0o755)
                if CFG["isolated"]:
                    os.chown(parent, uid, uid, follow_symlinks=False)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            write_all(fd, [text if isinstance(text, bytes) else text.encode()])
            if CFG["isolated"]:
                os.fchown(fd, uid, uid)
        finally:
            os.close(fd)


def fetch_files(names, cap):
    """Read result files as named by the request: top-level names only, never through a symlink."""
    out = {}
    dirfd = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
            except OSError as exc:
                out[name] = {"error": os.strerror(exc.errno)}
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    out[name] = {"error": "not a regular file"}
                    continue
                data = os.read(fd, cap + 1)
                out[name] = {"b64": base64.b64encode(data[:cap]).decode(), "truncated": len(data) > cap}
            finally:
                os.close(fd)
    finally:
        os.close(dirfd)
    return out


def read_build(paths, cap):
    """What a compile left for the runs (`paths`: files, or directories whose `.class` files
    count), as {path below /tmp: base64}, for the daemon's build cache; None when a path is
    missing, not a regular file (never followed through a symlink), or the whole is over `cap`
    bytes. Read before any run, so that nothing a program does can change what is cached."""
    out, total = {}, 0
    named = [p[len("/tmp/"):] or "." for p in paths]
    todo = list(named)
    dirfd = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY)
    try:
        while todo:
            rel = todo.pop()
            try:
                fd = os.open(rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
            except OSError:
                return None
            try:
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode):
                    todo += [n if rel == "." else f"{rel}/{n}" for n in os.listdir(fd)
                             if n.endswith(".class") or "." not in n]
                    continue
                if not stat.S_ISREG(st.st_mode):
                    if rel.endswith(".class") or rel in named:
                        return None
                    continue
                total += st.st_size
                if total > cap:
                    return None
                data = read_all(fd) if st.st_size else b""
                out[rel] = base64.b64encode(data).decode()
            finally:
                os.close(fd)
    finally:
        os.close(dirfd)
    return out


class Child:
    """A T forked by a harness G, waiting for its request on `ctl_w`; `out` is what zh_spawn
    reported (pid, pipes), which zh_harness_units captures from. (The zygote's own children live
    in zygote_native.c.)"""

    def __init__(self, out, n_units):
        self.out, self.ctl_w, self.n_units = out, out[1], n_units


PIDNS = [-1]  # G's own PID namespace, to make unshare(CLONE_NEWPID) repeatable


def fork_child(n_units, setup):
    """Forks T natively (zh_spawn: pipes, a fresh PID namespace from PIDNS[0], isolation,
    privileges dropped, seccomp) with `n_units` sets of stdout/stderr/result pipes and a
    control pipe; `setup`: T makes the run's namespaces itself (G has made them for its T)."""
    out = (ctypes.c_int32 * (3 + 3 * n_units))()
    r = H.zh_spawn(n_units, int(setup), PIDNS[0], out)
    if r <= ZH_CHILD:
        become_child(r)
    if r != 0:
        raise OSError(H.zh_error().decode())
    return Child(out, n_units)


def send_units(child, start, count, body):
    """Hands T its units `start .. start + count` of a request (`body`: the request's JSON)."""
    try:
        write_all(child.ctl_w, [UNITS.pack(ZP_TESTS, start, count), body])
    except OSError:
        pass  # the child died in setup; its stderr says why
    os.close(child.ctl_w)


def dispatch(child, units, lim, code):
    msg = json.dumps({"units": units, "limits": lim, "code": code})
    send_units(child, 0, len(units), msg.encode())


SPARE = [None]


def harness_main(data):
    """G: a run with files. Writes them into the run's /tmp, hands the program to the T forked
    ahead (which compiles and runs it like any other), then sends its unit and the files asked
    for."""
    req = json.loads(data)
    del data
    write_request_files(req.get("files"))
    lim = req["limits"]
    child, SPARE[0] = SPARE[0], None
    dispatch(child, req["units"], lim, req["code"])
    harness_units(child, 1, lim)
    reply = {}
    if req.get("fetch_files"):
        reply["files"] = fetch_files(req["fetch_files"], lim["max_output_bytes"])
    send_frame(ZP_REPORT, reply)


def exec_in_child(child, step, stdin, fork_next=0):
    """One unit in a T forked by G that execs `step`'s argv (in G's /tmp) under its limits and
    env; streamed to the daemon. `fork_next`: forks (and returns) the next T, with that many
    units, while this one runs, so that its fork and isolation are paid on the other core."""
    send_exec(child, step, [{"stdin": stdin}])
    nxt = fork_child(fork_next, setup=False) if fork_next else None
    harness_units(child, 1, step["limits"])
    return nxt


def send_exec(child, step, units, spawn=False):
    """Hands T units that exec (or, `spawn`: that T spawns) `step`'s argv under its limits and env."""
    msg = {"units": units, "limits": step["limits"], "code": "", "argv": step["argv"], "env": step.get("env") or {}}
    if spawn:
        msg["spawn"] = True
    send_units(child, 0, len(units), json.dumps(msg).encode())


def harness_units(child, n, lim):
    """Captures T's first `n` units (zh_harness_units); returns how many T ran before it died."""
    done = H.zh_harness_units(child.out, n, lim["timeout_ms"], lim["max_output_bytes"])
    if done < 0:
        raise OSError(H.zh_error().decode())
    return done


def units_per_runner():
    """Units one runner T takes: each holds three pipe ends and a stdin (zygote_native.c)."""
    return max(1, min(128, (CFG.get("max_open_files", 256) - 32) // 4))


def run_units(child, run, units):
    """The runs of a compiled request: batches of units, each batch in one T that spawns a
    process per unit (`spawn_units`), the first batch in `child` (a T of one unit, forked
    while the compile ran). A T that dies (a unit past its deadline, a crash) ends its batch
    there; the units after it go to a new T."""
    k = 0
    while k < len(units):
        if child is None:
            child = fork_child(min(units_per_runner(), len(units) - k), setup=False)
        n = child.n_units
        send_exec(child, run, units[k:k + n], spawn=True)
        k += max(harness_units(child, n, run["limits"]), 1)
        child = None
        if H.zh_stopped():  # all-or-nothing scoring and a test failed: the rest need not run
            return True
    return False


def compiled_main(data):
    """G: a program in a language of the table (compiled.rs). Writes the source (and any
    files) into the run's /tmp, runs the compiler (where there is one) in the T forked ahead,
    then, when it left what the runs need, each of the request's runs in a fresh T that execs
    the program. Every unit (the compile first) streams to the daemon as it ends."""
    req = json.loads(data)
    del data
    files = dict(req.get("files") or {})
    files[req["source"]["name"]] = req["source"]["text"]
    write_request_files(files)
    child, SPARE[0] = SPARE[0], None
    units = req["units"]
    built = True
    reply = {}
    if req.get("prebuilt"):  # from the daemon's build cache: no compile, no compile unit
        write_request_files({k: base64.b64decode(v) for k, v in req["prebuilt"].items()}, 0o755)
    elif req.get("compile"):
        child = exec_in_child(child, req["compile"], "", fork_next=min(units_per_runner(), len(units)))
        try:  # lstat: a symlink planted in /tmp is not a file the compiler made
            built = stat.S_ISREG(os.lstat(req["binary"]).st_mode)
        except OSError:
            built = False
        if built and req.get("return_build"):
            reply["build"] = read_build(req["return_build"]["paths"], req["return_build"]["cap"])
    if built:
        if run_units(child, req["run"], units):
            reply["stopped"] = True
    elif child is not None:
        os.close(child.ctl_w)  # the T forked for a first test that will not come: it exits
    reply["compiled"] = built
    if req.get("fetch_files"):
        reply["files"] = fetch_files(req["fetch_files"], req["run"]["limits"]["max_output_bytes"])
    send_frame(ZP_REPORT, reply)


# ---- test-code parsing (a throwaway fork that never runs untrusted code) -------------------------

CMP_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
           ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}


def operand(node):
    try:
        return {"literal": encode(ast.literal_eval(node))}
    except Exception:
        return {"expr": ast.unparse(node)}


def analyze(test):
    src = ast.unparse(test)
    if isinstance(test, ast.Compare) and all(type(op) in CMP_OPS for op in test.ops):
        return {"src": src, "operands": [operand(n) for n in [test.left, *test.comparators]],
                "ops": [CMP_OPS[type(op)] for op in test.ops], "negate": False}
    negate = False
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        negate, test = True, test.operand
    return {"src": src, "operands": [operand(test)], "ops": [], "negate": negate}


def parse_main(data):
    req = json.loads(data)
    del data
    try:
        tree = ast.parse(req["test_code"])
    except SyntaxError as exc:
        send_frame(ZP_REPORT, {"error": f"test code does not parse: {exc}"})
        return
    entry = req.get("entry_point")
    setup, checks, whole = [], [], False
    calls_check = False
    for st in tree.body:
        if isinstance(st, ast.Assert):
            checks.append(analyze(st.test))
        elif isinstance(st, ast.FunctionDef) and st.name == "check" and len(st.args.args) == 1:
            arg = st.args.args[0].arg
            inner = [s for s in st.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            if entry and all(isinstance(s, ast.Assert) for s in inner):
                setup.append(f"{arg} = {entry}")
                checks.extend(analyze(s.test) for s in inner)
            else:
                whole = True
            setup.append(ast.unparse(st))
        elif (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)
              and isinstance(st.value.func, ast.Name) and st.value.func.id == "check"):
            calls_check = True
        elif isinstance(st, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign,
                             ast.AnnAssign, ast.AsyncFunctionDef)) or (
                isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant)):
            setup.append(ast.unparse(st))
        else:
            whole = True
    names = program_names_used(tree, entry)
    if whole or not checks:
        code = req["test_code"]
        if entry and not calls_check and "def check(" in code:
            code += f"\ncheck({entry})\n"
        send_frame(ZP_REPORT, {"whole": code, "names": names})
        return
    send_frame(ZP_REPORT, {"setup": "\n".join(setup), "checks": checks, "names": names})


def program_names_used(tree, entry):
    """The names the test code reads but never binds itself, builtins excepted: the ones it can
    only mean to take from the program (its entry point, helpers such as HumanEval's `poly`).
    A builtin the program redefines is not among them: the checking code keeps the real one."""
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    names = sorted(n for n in loaded - bound if not hasattr(builtins, n))
    if entry and entry not in names:
        names.insert(0, entry)
    return names


# ---- the zygote loop -----------------------------------------------------------------------------

def read_request(fd):
    """A spare harness blocks here until the zygote hands it a request, then sees EOF."""
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def prefork(own_pidns):
    """Forks the next harness ahead of time: its namespaces and tmpfs are ready before the request
    arrives, so their cost is paid while the previous run executes."""
    if CFG["isolated"]:
        # unshare(CLONE_NEWPID) works once per process; resetting the namespace for children to
        # our own first makes it repeatable: a fresh PID namespace per run.
        check(libc.setns(own_pidns, CLONE_NEWPID), "setns(pid)")
        check(libc.unshare(CLONE_NEWPID), "unshare(pid)")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            close_except({r})
            libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
            if H.zh_setup_run() != 0:  # the run's namespaces, /tmp and /proc, as a child T's
                raise OSError(H.zh_error().decode())
            if CFG["isolated"]:
                PIDNS[0] = os.open("/proc/self/ns/pid", os.O_RDONLY)
            SPARE[0] = fork_child(1, setup=False)  # the run's namespaces are G's
            data = read_request(r)
            if not data:
                os._exit(0)
            if data[0] == ZP_RUN_WITH_FILES:
                harness_main(data[1:])
            elif data[0] == ZP_COMPILED:
                compiled_main(data[1:])
            else:  # ZP_PARSE
                parse_main(data[1:])
        except BaseException as exc:
            code = 1
            try:
                send_frame(ZP_REPORT, {"harness_error": f"{type(exc).__name__}: {exc}"})
            except BaseException:
                pass
        os._exit(code)
    os.close(r)
    return pid, w


def serve():
    load_hello()
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY) if CFG["isolated"] else -1
    load_native(own_pidns)
    send_frame(ZP_READY, {"ready": True, "pid": os.getpid(), "version": sys.version.split()[0]})
    spare = prefork(own_pidns)
    PIDNS[0] = own_pidns
    while True:
        # Plain runs and tests requests never come back here (nor does any Python run in the
        # zygote for them); runs with files and test-code parsing do.
        kind = H.zh_serve()
        if kind <= ZH_CHILD:
            become_child(kind)
        if kind < 0:
            H.zh_die()  # a broken slot: the daemon logs why and restarts it
        n, budget_ms = H.zh_request_len(), H.zh_request_budget()
        view = memoryview((ctypes.c_char * n).from_address(H.zh_request())).cast("B")
        pid, w = spare
        try:
            os.write(w, bytes([kind]))
            rest = view
            while rest:
                rest = rest[os.write(w, rest):]
        except OSError:
            pass  # the spare died during setup: reported below as a run without a report
        os.close(w)
        view[:] = bytes(n)  # no later run may find this request in memory inherited from the zygote
        view.release()
        spare = prefork(own_pidns)
        pidfd = os.pidfd_open(pid)
        killed = False
        if not select.select([pidfd], [], [], budget_ms / 1000.0)[0]:
            os.kill(pid, signal.SIGKILL)
            killed = True
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        send_frame(ZP_DONE, {"status": status, "killed": killed})


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    serve()
