/*
 * The zygote's native half: loaded into the slot's pre-imported interpreter with ctypes.PyDLL
 * (so the GIL stays held and no other Python thread can run), it serves plain runs and tests
 * requests without executing a line of Python in the zygote.
 *
 * Why native: after every fork the zygote shares all its pages with the child, so each page the
 * zygote writes costs a copy-on-write fault, and CPython writes reference counts wherever it
 * goes. The Python serve loop took ~190 such faults per run, the Python set-up of a child (ctypes
 * calls for namespaces, mounts, uid maps, capabilities, seccomp) ~160 more; at ~3-5 us a fault on
 * our VMs that was about half of a run's CPU. This file keeps to its own static data, its stack
 * and MADV_DONTFORK buffers, so the zygote takes a handful of faults per run, and a child's
 * isolation costs only the kernel's work.
 *
 * Protocol with the daemon (fd 3) and with a child T are those of zygote.py, which documents
 * them; zygote.py still serves runs with files and test-code parsing (the rare requests), for
 * which zh_serve returns to Python.
 *
 * In a forked child, after its isolation and its request's header, every function here returns
 * ZH_CHILD or ZH_CHILD_RUN to Python, which then runs the untrusted program (zygote.py
 * `become_child`). Nothing here allocates with malloc: the child and the zygote share the C
 * heap with Python.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open /* the same number on every architecture (new syscalls are unified) */
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* The zygote protocol's message kinds, as sandbox/src/protocol.rs chooses them (its tests hold
 * these to its table): from the daemon, then from the zygote. */
#define ZP_HELLO 'H'
#define ZP_RUN 'Q'
#define ZP_TESTS 'U'
#define ZP_RUN_WITH_FILES 'R'
#define ZP_COMPILED 'C'
#define ZP_PARSE 'P'
#define ZP_STOP 'S'
#define ZP_READY 'h'
#define ZP_UNIT 'o'
#define ZP_REPORT 'r'
#define ZP_DONE 'd'
#define ZH_CHILD (-1000)   /* returned in a forked T with a tests request ('U') on REQ_FD */
#define ZH_CHILD_RUN (-1001) /* returned in a forked T set up for a plain run ('Q') */
#define CTL 3
#define REQ_FD 4         /* in T: the request pipe */
#define UNIT_FD_BASE 10  /* in T: unit k's stdout/stderr/result pipes are 10+3k, 11+3k, 12+3k */
#define RES_FD 3         /* in a plain run's T: the result pipe (stdout and stderr at 1 and 2) */
#define MAX_UNITS 128    /* pipe sets per T; more units run in the next T */
/* In T: unit k's stdin, a memfd made before the run filter (which denies memfd_create: a
 * program's memfds would be memory no rlimit counts), above the n units' pipes. */
#define STDIN_FD(n, k) (UNIT_FD_BASE + 3 * (n) + (k))
#define MAX_FILTER 1024
#define RESULT_CAP (1u << 24)
#define DISCARD (1u << 16)
#define DRAIN_MS 2000     /* how long stragglers may still write after T is gone */
#define REPORT_SIZE 32    /* T's binary report: see zygote.py REPORT */
#define REPORT_COMPILE_ERROR 1u
#define REPORT_SIGNALED 2u        /* rc is the signal that ended a spawned program */

struct zh_config {
    int32_t isolated;
    int32_t uid;
    int32_t per_run_netns;
    int32_t own_pidns;        /* fd of the zygote's own PID namespace */
    int32_t max_open_files;
    int32_t units_per_process;
    uint32_t max_output_bytes;
    uint32_t slot_filter_len; /* seccomp.rs: installed on the zygote by zh_configure */
    const struct sock_filter *slot_filter;
    uint32_t run_filter_len;  /* installed on every child */
    const struct sock_filter *run_filter;
    const char *tmpfs_opts;
    /* How far a unit's wall time may stretch when the slots outnumber the cores and every one
     * runs a program that wants a core: the wall-clock backstop where no scheduler statistics
     * say how long a unit waited for a CPU. */
    int32_t wall_factor;
};

static struct zh_config cfg;
/* Online CPUs (how fast a unit's threads can spend CPU time), and whether the kernel keeps the
 * per-task scheduler statistics (/proc/<pid>/schedstat) that say how long a task waited for a
 * CPU. */
static int ncpu = 1;
static int have_schedstat;
/* The daemon sent 'S' during the request: stop at the unit that runs (all-or-nothing scoring
 * needs no more once a test failed). */
static int stop_requested;
static void forget_after_fork(void);
static int resolve_python_api(void);
static int probe_schedstat(void);
/* The interpreter's own after-fork bookkeeping (what os.fork runs in its child), called by a new
 * T here: from Python, through ctypes, it cost ~140 faults per run. */
static void (*after_fork_child)(void);
static struct sock_filter run_filter[MAX_FILTER];
static char tmpfs_opts[256];
static char err_buf[512];

/* Set in a child T, for Python to read after ZH_CHILD: unit pipe sets, and from the request's
 * header, the first unit and how many. */
static int32_t child_units, child_start, child_count;
/* In a plain run's T: its resource usage when the program started (zh_finish_run). */
static struct rusage run_start;

struct child {
    pid_t pid;
    int pidfd;
    int ctl_w;
    int n_units;          /* pipe sets; 0 once closed */
    int started;          /* units sent */
    int fds[MAX_UNITS][3];
};

/* ---- small helpers --------------------------------------------------------------------------- */

static int fail(const char *fmt, ...) {
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof err_buf && e)
        snprintf(err_buf + n, sizeof err_buf - (size_t)n, ": %s", strerror(e));
    errno = e ? e : EINVAL;
    return -1;
}

const char *zh_error(void) { return err_buf; }

/* User + system CPU of `ru`, in milliseconds. */
static double cpu_ms_of(const struct rusage *ru) {
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000.0 +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000.0;
}

/* Closes fds lo..hi; one by one where the kernel has no close_range (before 5.9): a child must
 * never keep another's pipes or the zygote's control socket. */
static void close_from(unsigned lo, unsigned hi) {
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return;
    struct rlimit rl;
    unsigned top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (unsigned)rl.rlim_cur : 65536;
    for (unsigned fd = lo; fd <= hi && fd < top; fd++)
        close((int)fd);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int read_exact(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Writes every iovec in order (consumes `iov`). */
static int write_allv(int fd, struct iovec *iov, int cnt) {
    while (cnt) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        while (cnt && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t n) {
    struct iovec v = {(void *)buf, n};
    return write_allv(fd, &v, 1);
}

static int send_frame(char kind, const char *payload, size_t n) {
    unsigned char hdr[5];
    uint32_t len = (uint32_t)n;
    memcpy(hdr, &len, 4);
    hdr[4] = (unsigned char)kind;
    struct iovec v[2] = {{hdr, 5}, {(void *)payload, n}};
    return write_allv(CTL, v, 2);
}

/* Memory no forked child inherits: requests and program output live here, so no run finds
 * another's data in what it inherited, and forks skip these page tables. */
static void *dontfork_map(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (madvise(p, size, MADV_DONTFORK) != 0) {
        munmap(p, size);
        return NULL;
    }
    return p;
}

static void kill_child(pid_t pid) {
    /* Isolated, T is pid 1 of its own PID namespace: the kernel kills the rest. Without
     * namespaces, T leads a process group of its own. */
    kill(cfg.isolated ? pid : -pid, SIGKILL);
}

static int write_proc(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return fail("open %s", path);
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    if (n != (ssize_t)strlen(text))
        return fail("write %s", path);
    return 0;
}

/* ---- configuration --------------------------------------------------------------------------- */

/* Takes the slot's settings and puts the zygote under the slot part of the seccomp policy: the
 * kernel compiles that once, and every child inherits it for free. */
int zh_configure(const struct zh_config *c) {
    if (c->run_filter_len > MAX_FILTER || c->slot_filter_len > 0xffff)
        return fail("seccomp filter too long");
    if (strlen(c->tmpfs_opts) >= sizeof tmpfs_opts)
        return fail("tmpfs options too long");
    after_fork_child = (void (*)(void))dlsym(RTLD_DEFAULT, "PyOS_AfterFork_Child");
    if (!after_fork_child)
        return fail("PyOS_AfterFork_Child not found in the interpreter");
    if (resolve_python_api() != 0)
        return -1;
    if (pthread_atfork(NULL, NULL, forget_after_fork) != 0)
        return fail("pthread_atfork");
    cfg = *c;
    if (cfg.wall_factor < 1)
        cfg.wall_factor = 1;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    ncpu = online > 0 ? (int)online : 1;
    have_schedstat = probe_schedstat();
    memcpy(run_filter, c->run_filter, sizeof(struct sock_filter) * c->run_filter_len);
    strcpy(tmpfs_opts, c->tmpfs_opts);
    cfg.run_filter = run_filter;
    cfg.slot_filter = NULL;
    cfg.tmpfs_opts = tmpfs_opts;
    /* The zygote never execs, so no_new_privs costs it nothing (and makes the filter legal
     * without CAP_SYS_ADMIN when unisolated). */
    struct sock_fprog prog = {(unsigned short)c->slot_filter_len, (struct sock_filter *)c->slot_filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
        return fail("installing the slot's seccomp filter");
    return 0;
}

/* ---- a plain run's program, compiled natively ------------------------------------------------- */

/* The CPython API this needs, declared here rather than taken from Python.h (the build needs no
 * Python headers) and looked up in the interpreter at configure time. */
struct py_compiler_flags {
    int cf_flags;
    int cf_feature_version;
};
#define PY_FILE_INPUT 257
#define PYCF_IGNORE_COOKIE 0x0800 /* what compile() sets for a str source */
static void *(*py_compile)(const char *, const char *, int, struct py_compiler_flags *, int);
static void (*py_err_set_string)(void *, const char *);
static void **py_exc_value_error;

static int resolve_python_api(void) {
    py_compile = (void *(*)(const char *, const char *, int, struct py_compiler_flags *, int))dlsym(
        RTLD_DEFAULT, "Py_CompileStringExFlags");
    py_err_set_string = (void (*)(void *, const char *))dlsym(RTLD_DEFAULT, "PyErr_SetString");
    py_exc_value_error = (void **)dlsym(RTLD_DEFAULT, "PyExc_ValueError");
    if (!py_compile || !py_err_set_string || !py_exc_value_error)
        return fail("the interpreter does not export the compile API");
    return 0;
}

/* In T (a plain run): reads the program's source, the rest of the request on REQ_FD, closes
 * REQ_FD and compiles the source as compile(source, "main.py", "exec", dont_inherit=True)
 * would, with no Python frame and no str copy of the source. Returns a new reference to the
 * code object, or NULL with the exception set (ctypes.PyDLL raises it). The buffer is fresh
 * memory (zero-fill faults, not copies of the zygote's pages) and the process ends soon. */
void *zh_compile_request(int feature_version) {
    size_t cap = 1 << 16, len = 0;
    char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    while (buf != MAP_FAILED) {
        if (len + 1 == cap) {
            char *bigger = mremap(buf, cap, cap * 2, MREMAP_MAYMOVE);
            if (bigger == MAP_FAILED) {
                munmap(buf, cap);
                buf = MAP_FAILED;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(REQ_FD, buf + len, cap - 1 - len);
        if (r == 0)
            break;
        if (r < 0 && errno != EINTR) {
            munmap(buf, cap);
            buf = MAP_FAILED;
            break;
        }
        if (r > 0)
            len += (size_t)r;
    }
    close(REQ_FD);
    if (buf == MAP_FAILED) {
        py_err_set_string(*py_exc_value_error, "sandbox: reading the program failed");
        return NULL;
    }
    if (memchr(buf, 0, len)) { /* as compile() of a str says it */
        py_err_set_string(*py_exc_value_error, "source code string cannot contain null bytes");
        return NULL;
    }
    buf[len] = 0;
    struct py_compiler_flags flags = {PYCF_IGNORE_COOKIE, feature_version};
    void *code = py_compile(buf, "main.py", PY_FILE_INPUT, &flags, -1);
    getrusage(RUSAGE_SELF, &run_start); /* the program's CPU is counted from here */
    return code;
}

/* Ends a plain run in T: the report (exit code, the program's CPU, peak RSS, a null value) on
 * RES_FD, then EOF on the unit's pipes at once (at exit they would close only after the kernel
 * has torn down this process's memory, which would hold up the answer), then exit. Native, so
 * the run's last steps build no Python objects and copy none of the zygote's pages. */
void zh_finish_run(int32_t rc) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    double cpu_ms = cpu_ms_of(&u) - cpu_ms_of(&run_start);
    int64_t rss = u.ru_maxrss;
    uint32_t zero = 0;
    unsigned char rep[REPORT_SIZE + 4];
    memcpy(rep, "GZR1", 4);
    memcpy(rep + 4, &rc, 4);
    memcpy(rep + 8, &zero, 4);
    memcpy(rep + 12, &zero, 4);
    memcpy(rep + 16, &cpu_ms, 8);
    memcpy(rep + 24, &rss, 8);
    memcpy(rep + REPORT_SIZE, "null", 4);
    (void)write_all(RES_FD, rep, sizeof rep);
    close_from(0, RES_FD);
    _exit(rc);
}

int32_t zh_child_units(void) { return child_units; }
int32_t zh_child_start(void) { return child_start; }
int32_t zh_child_count(void) { return child_count; }

/* Units one T runs in a row: `asked`, else the configured number (1 = a process per test),
 * bounded by the open-files limit (T holds three pipe ends and a stdin per unit) and MAX_UNITS. */
static int units_per_process(int asked) {
    int k = asked ? asked : cfg.units_per_process;
    int by_files = (cfg.max_open_files - 32) / 4;
    if (k > by_files)
        k = by_files;
    if (k > MAX_UNITS)
        k = MAX_UNITS;
    return k < 1 ? 1 : k;
}

/* ---- a child T: fork, isolation ---------------------------------------------------------------- */

/* The run's own namespaces, /tmp and /proc (what a harness G does for its runs with files). */
static int setup_run(void) {
    if (!cfg.isolated)
        return 0;
    int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (cfg.per_run_netns ? CLONE_NEWNET : 0);
    if (unshare(flags) != 0)
        return fail("unshare(run)");
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_opts) != 0)
        return fail("mount /tmp");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        return fail("mount /proc");
    /* The fresh procfs shows the host kernel's command line again; mask it as the slot does. */
    if (mount("/dev/null", "/proc/cmdline", NULL, MS_BIND, NULL) != 0)
        return fail("mask /proc/cmdline");
    sethostname("sandbox", 7);
    return 0;
}

/* For zygote.py: a harness G makes its run's namespaces here too. */
int zh_setup_run(void) { return setup_run(); }

/* T's stdin memfds, one per unit (see STDIN_FD). */
static int make_stdins(int n) {
    for (int k = 0; k < n; k++) {
        int fd = memfd_create("stdin", 0);
        if (fd < 0)
            return fail("memfd_create");
        if (fd != STDIN_FD(n, k) && (dup2(fd, STDIN_FD(n, k)) < 0 || close(fd) != 0))
            return fail("dup2 stdin");
    }
    return 0;
}

/* After this, T has no capability anywhere, a fresh user namespace, no way to gain privileges,
 * and the seccomp filter. */
static int drop_privileges(void) {
    /* A process group of its own: kill(0) by the program reaches only what it started, and
     * without namespaces the zygote kills the group. Not a session: setsid() would also make a
     * scheduler autogroup (a task group with a run queue per CPU) per run, which costs its
     * creation, its RCU-deferred teardown and the load balancer's walk over every one still
     * alive, and would give each run the CPU weight of a whole login session. */
    setpgid(0, 0);
    if (cfg.isolated) {
        uid_t uid = (uid_t)cfg.uid;
        char map[64];
        /* uid 0 is the rootless mode's (the slot maps only the daemon's own uid): there the
         * slot's user namespace denies setgroups, as the kernel requires of an unprivileged map. */
        if ((setgroups(0, NULL) != 0 && !(uid == 0 && errno == EPERM)) ||
            setresgid(uid, uid, uid) != 0)
            return fail("setresgid");
        if (setresuid(uid, uid, uid) != 0) /* leaves uid 0: every capability here is gone */
            return fail("setresuid");
        /* The uid change left T non-dumpable, which makes its own /proc files root's. */
        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
            return fail("dumpable");
        if (unshare(CLONE_NEWUSER) != 0)
            return fail("unshare(user)");
        snprintf(map, sizeof map, "%u %u 1", uid, uid);
        if (write_proc("/proc/self/setgroups", "deny") || write_proc("/proc/self/uid_map", map) ||
            write_proc("/proc/self/gid_map", map))
            return -1;
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof data);
        if (syscall(SYS_capset, &hdr, data) != 0)
            return fail("capset");
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fail("no_new_privs");
    struct sock_fprog prog = {(unsigned short)cfg.run_filter_len, run_filter};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
        return fail("seccomp");
    if (chdir("/tmp") != 0)
        return fail("chdir /tmp");
    return 0;
}

/* In the new T: the request pipe at REQ_FD, unit k's write ends at UNIT_FD_BASE + 3k + {0,1,2},
 * every other fd of the zygote closed (its control socket, other children's pipes). */
static int arrange_fds(int ctl_r, int n, int theirs[][3]) {
    int high = UNIT_FD_BASE + 3 * MAX_UNITS + 16;
    int moved[MAX_UNITS][3];
    int r = fcntl(ctl_r, F_DUPFD, high);
    if (r < 0)
        return fail("dup");
    for (int k = 0; k < n; k++)
        for (int j = 0; j < 3; j++)
            if ((moved[k][j] = fcntl(theirs[k][j], F_DUPFD, high)) < 0)
                return fail("dup");
    if (dup2(r, REQ_FD) < 0)
        return fail("dup2");
    for (int k = 0; k < n; k++)
        for (int j = 0; j < 3; j++)
            if (dup2(moved[k][j], UNIT_FD_BASE + 3 * k + j) < 0)
                return fail("dup2");
    close(3);
    close_from(REQ_FD + 1, UNIT_FD_BASE - 1);
    close_from(UNIT_FD_BASE + 3 * n, ~0u);
    return 0;
}

/* A plain run's header after T's: the hard limits, then stdin's length; stdin and the program's
 * source follow (engine.rs `run_payload`). */
struct run_header {
    uint64_t cpu_s, memory_bytes, max_processes, max_file_bytes, max_open_files, stdin_len;
};

/* In T, set up and waiting: reads the request's header. A tests request ('U') goes to Python
 * as it is (ZH_CHILD; the rest is JSON on REQ_FD). For a plain run ('Q') T puts stdin in a
 * memfd at fd 0, takes the hard limits (soft = hard, so the program cannot raise them back),
 * puts the unit's pipes at 1, 2, 3, and leaves only the source on REQ_FD (ZH_CHILD_RUN). */
static int await_request(void) {
    uint32_t hdr[3];
    if (read_exact(REQ_FD, hdr, sizeof hdr) != 0)
        _exit(0); /* no request: the slot is shutting down */
    child_start = (int32_t)hdr[1];
    child_count = (int32_t)hdr[2];
    if (hdr[0] != ZP_RUN)
        return ZH_CHILD;
    struct run_header h;
    if (read_exact(REQ_FD, &h, sizeof h) != 0)
        return fail("short run request");
    /* stdin first: it may be larger than the files the program may write */
    int in = STDIN_FD(child_units, 0);
    char buf[4096];
    for (uint64_t left = h.stdin_len; left;) {
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        if (read_exact(REQ_FD, buf, want) != 0 || write_all(in, buf, want) != 0)
            return fail("copying stdin");
        left -= want;
    }
    if (lseek(in, 0, SEEK_SET) != 0 || dup2(in, 0) < 0 || close(in) != 0)
        return fail("stdin");
    struct rlimit_set {
        int res;
        uint64_t val;
    } lims[] = {{RLIMIT_CPU, h.cpu_s},
                {RLIMIT_AS, h.memory_bytes},
                {RLIMIT_NPROC, h.max_processes},
                {RLIMIT_FSIZE, h.max_file_bytes},
                {RLIMIT_NOFILE, h.max_open_files},
                {RLIMIT_CORE, 0},
                {RLIMIT_MEMLOCK, 0},
                {RLIMIT_MSGQUEUE, 0}};
    for (size_t i = 0; i < sizeof lims / sizeof *lims; i++) {
        struct rlimit rl = {lims[i].val, lims[i].val};
        if (setrlimit(lims[i].res, &rl) != 0)
            return fail("setrlimit");
    }
    for (int j = 0; j < 3; j++)
        if (dup2(UNIT_FD_BASE + j, 1 + j) < 0 || close(UNIT_FD_BASE + j) != 0)
            return fail("unit fds");
    return ZH_CHILD_RUN;
}

/* Forks T with `n` sets of unit pipes and a request pipe. T is pid 1 of a fresh PID namespace
 * (set up from `pidns`, a namespace of the caller's): when it exits the kernel kills everything
 * it started, and a spare T forked ahead is out of its reach. `setup`: T makes the run's
 * namespaces itself (a harness G has made them for its T). Returns ZH_CHILD in T, 0 in the
 * parent, -1 on error. */
static int spawn(struct child *c, int n, int setup, int pidns) {
    int ctl[2], theirs[MAX_UNITS][3];
    if (n > MAX_UNITS)
        n = MAX_UNITS;
    if (cfg.isolated && (setns(pidns, CLONE_NEWPID) != 0 || unshare(CLONE_NEWPID) != 0))
        return fail("new PID namespace");
    if (pipe2(ctl, O_CLOEXEC) != 0)
        return fail("pipe");
    for (int k = 0; k < n; k++) {
        int p[3][2];
        for (int j = 0; j < 3; j++) {
            if (pipe2(p[j], O_CLOEXEC) != 0) {
                for (int i = 0; i < j; i++)
                    close(p[i][0]), close(p[i][1]);
                for (int i = 0; i < k; i++)
                    for (int m = 0; m < 3; m++)
                        close(c->fds[i][m]), close(theirs[i][m]);
                close(ctl[0]), close(ctl[1]);
                return fail("pipe");
            }
        }
        for (int j = 0; j < 3; j++) {
            c->fds[k][j] = p[j][0];
            theirs[k][j] = p[j][1];
        }
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        for (int k = 0; k < n; k++)
            for (int j = 0; j < 3; j++)
                close(c->fds[k][j]), close(theirs[k][j]);
        close(ctl[0]), close(ctl[1]);
        errno = e;
        return fail("fork");
    }
    if (pid == 0) {
        child_units = n;
        /* The OOM killer's first choice, in the slot's memory cgroup and on the host: above
         * the zygote and the harness whatever their size (raising a score needs no
         * privilege; best effort). */
        int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (adj >= 0) {
            (void)!write(adj, "1000", 4);
            close(adj);
        }
        if (arrange_fds(ctl[0], n, theirs) == 0 && (!setup || setup_run() == 0) &&
            make_stdins(n) == 0 && drop_privileges() == 0) {
            after_fork_child(); /* GIL held: zh_* are called through ctypes.PyDLL */
            int r = await_request();
            if (r != -1)
                return r;
        }
        /* The set-up failed: say why on unit 0's stderr (the zygote reports it) and go. */
        char msg[600];
        int len = snprintf(msg, sizeof msg, "sandbox setup failed: %s\n", err_buf);
        if (n > 0 && write(UNIT_FD_BASE + 1, msg, (size_t)len) < 0 && errno == EBADF)
            (void)!write(2, msg, (size_t)len); /* a plain run's pipes had moved already */
        _exit(111);
    }
    close(ctl[0]);
    for (int k = 0; k < n; k++)
        for (int j = 0; j < 3; j++)
            close(theirs[k][j]);
    c->pid = pid;
    c->ctl_w = ctl[1];
    c->n_units = n;
    c->started = 0;
    c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (c->pidfd < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        for (int k = 0; k < n; k++)
            for (int j = 0; j < 3; j++)
                close(c->fds[k][j]);
        close(c->ctl_w);
        errno = e;
        return fail("pidfd_open");
    }
    return 0;
}

/* For zygote.py (a harness G forks its T here too): as spawn, reporting the parent's ends in
 * out[0] = pid, out[1] = request pipe, out[2] = pidfd, out[3 + 3k + j] = unit k's read ends. */
int zh_spawn(int n, int setup, int pidns, int32_t *out) {
    struct child c;
    int r = spawn(&c, n, setup, pidns);
    if (r != 0)
        return r;
    out[0] = c.pid;
    out[1] = c.ctl_w;
    out[2] = c.pidfd;
    for (int k = 0; k < c.n_units; k++)
        for (int j = 0; j < 3; j++)
            out[3 + 3 * k + j] = c.fds[k][j];
    return 0;
}

/* Reaps T (killing it first when `kill_first`), closes what is left of its fds. */
static int close_child(struct child *c, int kill_first, int *status, struct rusage *ru) {
    int st = 0;
    if (kill_first)
        kill_child(c->pid);
    while (wait4(c->pid, &st, 0, ru) < 0 && errno == EINTR)
        ;
    close(c->pidfd);
    for (int k = 0; k < c->n_units; k++)
        for (int j = 0; j < 3; j++)
            if (c->fds[k][j] >= 0)
                close(c->fds[k][j]);
    if (c->ctl_w >= 0)
        close(c->ctl_w);
    c->ctl_w = -1;
    c->n_units = 0;
    c->pid = 0;
    if (status)
        *status = st;
    return st;
}

/* ---- serving units ------------------------------------------------------------------------------ */

static unsigned char *req_buf;
static size_t req_cap;
static unsigned char *arena;
static size_t arena_cap;
static struct child spares[2];   /* [0]: one unit (plain runs), [1]: a tests request's units */
static struct child reap_list[4];
static int reap_count;
static uint32_t req_len, req_budget;

/* In any forked child (a harness G is forked by Python's os.fork): the buffers were not
 * inherited (MADV_DONTFORK), and the spares and children to reap are the zygote's, not ours. */
static void forget_after_fork(void) {
    req_buf = arena = NULL;
    req_cap = arena_cap = 0;
    reap_count = 0;
    stop_requested = 0;
    memset(spares, 0, sizeof spares);
}

/* Reaps the children whose last unit already reported (after the answer went out). */
static void reap_later(void) {
    while (reap_count)
        close_child(&reap_list[--reap_count], 1, NULL, NULL);
}

static int send_units(struct child *c, uint32_t kind, uint32_t start, uint32_t count, const void *body,
                      size_t n) {
    uint32_t hdr[3] = {kind, start, count};
    struct iovec v[2] = {{hdr, sizeof hdr}, {(void *)body, n}};
    /* A failed write: the child died in set-up, and its stderr says why. */
    write_allv(c->ctl_w, v, 2);
    close(c->ctl_w);
    c->ctl_w = -1;
    c->started = (int)count;
    return 0;
}

struct unit_out {
    int rc_known, rc, exit_code_known, exit_code, signal, compile_error, signaled;
    int timed_out, output_limit, truncated, stopped;
    double wall_ms, cpu_ms, waited_ms;
    long long max_rss_kb;
    size_t out_len, err_off, err_len, val_off, val_len;
};

/* ---- a unit's CPU time, and how long it waited for a CPU ---------------------------------------- */

/* A small /proc file into buf, NUL-terminated: its length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return n;
}

/* A task's schedstat: "<ns on a CPU> <ns runnable but waiting for a CPU> <slices>". */
static int read_schedstat(const char *path, long long *on_cpu, long long *waiting) {
    char buf[128];
    if (read_small(path, buf, sizeof buf) < 0)
        return -1;
    char *p = buf;
    *on_cpu = (long long)strtoull(p, &p, 10);
    *waiting = (long long)strtoull(p, NULL, 10);
    return 0;
}

/* Kernels without CONFIG_SCHED_INFO (or with it off) print zeros. */
static int probe_schedstat(void) {
    char buf[128];
    if (read_small("/proc/self/schedstat", buf, sizeof buf) < 0)
        return 0;
    return strcmp(buf, "0 0 0\n") != 0;
}

/* CPU seconds a process has spent, all its threads (not its children); -1 once it is gone.
 * `pid` as fork() returned it (the clock's pid is looked up in the caller's PID namespace). */
static double process_cpu_s(pid_t pid) {
    clockid_t cid;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &cid) != 0 || clock_gettime(cid, &ts) != 0)
        return -1;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A child's pid as this process's /proc names it, from its pidfd's fdinfo. Not always the pid
 * fork() returned: the zygote's /proc was mounted before its PID namespace was made, so it
 * shows the host's numbers. -1 when unknown. */
static pid_t proc_pid_of(int pidfd) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    if (read_small(path, buf, sizeof buf) < 0)
        return -1;
    const char *p = strstr(buf, "\nPid:");
    if (!p)
        return -1;
    long v = strtol(p + 5, NULL, 10);
    return v > 0 ? (pid_t)v : -1;
}

/* Over the threads of the process /proc calls `ppid`: the CPU time they spent (ns) and the
 * longest time one of them waited for a CPU (ns), the main thread's counted from `base` (its
 * value when the unit started: T runs unit after unit); threads made since count whole. */
static void thread_stats(pid_t ppid, long long base, long long *cpu_ns, long long *delay_ns) {
    char path[96], dents[4096];
    *cpu_ns = 0;
    *delay_ns = -1;
    snprintf(path, sizeof path, "/proc/%d/task", (int)ppid);
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return;
    for (;;) {
        long n = syscall(SYS_getdents64, dir, dents, sizeof dents);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            unsigned short reclen;
            memcpy(&reclen, dents + off + 16, 2); /* struct linux_dirent64: d_reclen, d_name */
            const char *name = dents + off + 19;
            off += reclen;
            if (name[0] < '0' || name[0] > '9')
                continue;
            snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", (int)ppid, name);
            long long on_cpu, waiting;
            if (read_schedstat(path, &on_cpu, &waiting) != 0)
                continue;
            if (atoi(name) == (int)ppid)
                waiting -= base;
            *cpu_ns += on_cpu;
            if (waiting > *delay_ns)
                *delay_ns = waiting;
        }
    }
    close(dir);
}

/* Where a unit started: T's CPU time, its pid as /proc names it, its main thread's run delay. */
struct unit_clock {
    double cpu0;
    pid_t ppid;
    long long delay0;
};

static void unit_clock_start(const struct child *c, struct unit_clock *c0) {
    c0->cpu0 = process_cpu_s(c->pid);
    c0->ppid = proc_pid_of(c->pidfd);
    c0->delay0 = 0;
    if (have_schedstat && c0->ppid > 0) {
        char path[64];
        long long on_cpu, waiting;
        snprintf(path, sizeof path, "/proc/%d/schedstat", (int)c0->ppid);
        if (read_schedstat(path, &on_cpu, &waiting) == 0)
            c0->delay0 = waiting;
    }
}

/* What a unit has used since its start: CPU seconds of T and of the processes T started (a
 * compiled program under its runner), and the longest time any of their threads waited for a
 * CPU, which the wall-clock backstop does not count. */
static void unit_usage(const struct child *c, const struct unit_clock *c0, double *cpu,
                       double *waited) {
    double t = process_cpu_s(c->pid);
    *cpu = t >= 0 && c0->cpu0 >= 0 ? t - c0->cpu0 : 0;
    *waited = 0;
    if (c0->ppid <= 0)
        return;
    long long most = -1, kid_cpu, kid_delay;
    if (have_schedstat)
        thread_stats(c0->ppid, c0->delay0, &kid_cpu, &most);
    char path[96], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)c0->ppid, (int)c0->ppid);
    if (read_small(path, buf, sizeof buf) > 0) {
        char *p = buf;
        for (int i = 0; i < 64; i++) {
            char *end;
            unsigned long long kid = strtoull(p, &end, 10);
            if (end == p)
                break;
            p = end;
            thread_stats((pid_t)kid, 0, &kid_cpu, &kid_delay);
            *cpu += (double)kid_cpu * 1e-9;
            if (kid_delay > most)
                most = kid_delay;
        }
    }
    *waited = most > 0 ? (double)most * 1e-9 : 0;
}

static int ensure_arena(uint32_t cap) {
    size_t size = 2 * ((size_t)cap + 1) + RESULT_CAP + 1 + DISCARD;
    if (arena && arena_cap >= size)
        return 0;
    if (arena)
        munmap(arena, arena_cap);
    arena = dontfork_map(size);
    arena_cap = arena ? size : 0;
    return arena ? 0 : fail("output arena");
}

#define TIMED_OUT_CPU 1
#define TIMED_OUT_WALL 2

/* Captures unit k of T until its three pipes reach EOF (T went on or exited), T dies, the unit
 * runs out of time (T is killed), or the daemon says stop (an 'S' frame on CTL: T is killed and
 * the unit marked stopped). Time: the unit's CPU time (T's threads and the processes it started)
 * is the limit, `timeout_ms`; its wall time is the backstop, at `timeout_ms` too but not counting
 * the time its threads waited for a CPU, so that a program blocked in sleep or on a lock is cut
 * off at the limit while one slowed by more runs in flight than cores is not (without scheduler
 * statistics: `wall_factor` times the limit). Checks are made only when the CPU time could have
 * reached the limit (at the rate of every core) or the backstop is due, so a unit that ends
 * within its limit costs one clock read and one schedstat read. Output lands in the arena:
 * stdout at 0, stderr at cap+1, the result at 2cap+2, each with a byte to spare to tell "over
 * the cap" from "at it". Sets *alive = T still runs the next unit. */
static int collect_unit(struct child *c, int k, uint32_t timeout_ms, uint32_t cap, double t0,
                        struct unit_out *u, int *alive) {
    if (ensure_arena(cap) != 0)
        return -1;
    size_t start[3] = {0, (size_t)cap + 1, 2 * ((size_t)cap + 1)};
    size_t size[3] = {(size_t)cap + 1, (size_t)cap + 1, RESULT_CAP + 1};
    size_t filled[3] = {0, 0, 0};
    unsigned char *discard = arena + arena_cap - DISCARD;
    int live[3] = {1, 1, 1};
    int nlive = 3, dead = 0, over = 0, timed_out = 0, stopped = 0;
    double waited_last = 0;
    double limit = timeout_ms / 1000.0, drain_until = 0;
    /* However long it waited for a CPU, a unit is never given more than this. */
    double hard = t0 + limit * (cfg.wall_factor + 1);
    double next_check = t0 + limit / ncpu;
    struct unit_clock c0;
    unit_clock_start(c, &c0);
    memset(u, 0, sizeof *u);
    while (nlive) {
        double t = now_s(), left;
        if (!dead) {
            if (t >= next_check || t >= hard) {
                double cpu, waited;
                unit_usage(c, &c0, &cpu, &waited);
                waited_last = waited;
                /* A little beyond the limit: a program on a CPU throughout (a spinner) spends a
                 * few ms off it too (reading its request), and it should meet the CPU limit
                 * first, as the CPU limit is what it ran out of. */
                double slack = 0.01 + limit * 0.05;
                double allowed = have_schedstat ? limit + waited + slack : limit * cfg.wall_factor;
                if (t0 + allowed > hard)
                    allowed = hard - t0;
                if (cpu >= limit || t - t0 >= allowed) {
                    timed_out = cpu >= limit ? TIMED_OUT_CPU : TIMED_OUT_WALL;
                    kill_child(c->pid);
                    dead = 1;
                    continue;
                }
                double to_cpu = (limit - cpu) / ncpu, to_wall = allowed - (t - t0);
                next_check = t + (to_cpu < to_wall ? to_cpu : to_wall);
                if (next_check < t + 0.001)
                    next_check = t + 0.001;
            }
            left = next_check - t;
        } else {
            /* T is gone (and with it its PID namespace): only stragglers' output is left. */
            if (drain_until == 0)
                drain_until = t + DRAIN_MS / 1000.0;
            left = drain_until - t;
            if (left <= 0)
                break;
        }
        struct pollfd p[5];
        int idx[5], np = 0;
        for (int j = 0; j < 3; j++)
            if (live[j]) {
                p[np].fd = c->fds[k][j];
                p[np].events = POLLIN;
                idx[np++] = j;
            }
        if (!dead) {
            p[np].fd = c->pidfd;
            p[np].events = POLLIN;
            idx[np++] = -1;
            p[np].fd = CTL;
            p[np].events = POLLIN;
            idx[np++] = -2;
        }
        int ms = (int)ceil(left * 1000.0);
        int r = poll(p, (nfds_t)np, ms < 1 ? 1 : ms);
        if (r < 0 && errno != EINTR)
            return fail("poll");
        for (int i = 0; i < np && r > 0; i++) {
            if (!p[i].revents)
                continue;
            int j = idx[i];
            if (j == -2) {
                /* Only 'S' comes mid-request; EOF (the daemon is gone) stops as well. */
                unsigned char h[9];
                if (read_exact(CTL, h, sizeof h) != 0 || h[4] == ZP_STOP) {
                    stop_requested = stopped = 1;
                    kill_child(c->pid);
                    dead = 1;
                }
                continue;
            }
            if (j < 0) {
                dead = 1;
                if (!cfg.isolated)
                    kill_child(c->pid); /* without namespaces: its process group */
                continue;
            }
            int room = filled[j] < size[j];
            unsigned char *dst = room ? arena + start[j] + filled[j] : discard;
            size_t want = room ? size[j] - filled[j] : DISCARD;
            ssize_t n = read(p[i].fd, dst, want);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                live[j] = 0;
                nlive--;
                continue;
            }
            if (room)
                filled[j] += (size_t)n;
            if (filled[j] == size[j] && !over) { /* one byte past the cap */
                over = 1;
                kill_child(c->pid);
            }
        }
    }
    u->wall_ms = (now_s() - t0) * 1000.0;
    for (int j = 0; j < 3; j++) {
        close(c->fds[k][j]);
        c->fds[k][j] = -1;
    }
    u->timed_out = timed_out;
    u->waited_ms = waited_last * 1000.0;
    u->stopped = stopped;
    u->output_limit = over;
    u->truncated = filled[0] > cap || filled[1] > cap;
    u->out_len = filled[0] < cap ? filled[0] : cap;
    u->err_off = start[1];
    u->err_len = filled[1] < cap ? filled[1] : cap;
    size_t rlen = filled[2] < RESULT_CAP ? filled[2] : RESULT_CAP;
    const unsigned char *rep = arena + start[2];
    u->val_off = start[2];
    u->val_len = 0;
    if (rlen >= REPORT_SIZE && memcmp(rep, "GZR1", 4) == 0 && !timed_out && !over && !stopped) {
        int32_t rc;
        uint32_t flags;
        double cpu;
        int64_t rss;
        memcpy(&rc, rep + 4, 4);
        memcpy(&flags, rep + 8, 4);
        memcpy(&cpu, rep + 16, 8);
        memcpy(&rss, rep + 24, 8);
        u->rc_known = 1;
        u->rc = rc;
        u->compile_error = (flags & REPORT_COMPILE_ERROR) != 0;
        u->signaled = (flags & REPORT_SIGNALED) != 0 && rc > 0 && rc < 65;
        /* Written by T, so never trusted to be sane: the daemon must get valid JSON. */
        u->cpu_ms = isfinite(cpu) && cpu >= 0 && cpu < 1e12 ? cpu : 0;
        u->max_rss_kb = rss >= 0 && rss < (1LL << 50) ? rss : 0;
        u->val_off = start[2] + REPORT_SIZE;
        u->val_len = rlen - REPORT_SIZE;
    }
    *alive = u->rc_known;
    if (u->rc_known && k + 1 == c->started) {
        /* The last unit reported: T is exiting by itself. Reaping it waits for its memory to be
         * torn down, so that happens after the answer has gone out (reap_later). */
        if (reap_count == (int)(sizeof reap_list / sizeof *reap_list))
            reap_later();
        reap_list[reap_count++] = *c; /* with the pipes of any unused units, closed then */
        c->n_units = 0;
        c->ctl_w = -1;
        *alive = 0;
    } else if (!*alive || k + 1 == c->started) {
        /* The unit ended with T (a crash, a kill, os._exit): T's own exit status is the
         * unit's when no report came back. */
        int status;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        close_child(c, 0, &status, &ru);
        if (!u->rc_known) {
            if (WIFEXITED(status)) {
                u->exit_code_known = 1;
                u->exit_code = WEXITSTATUS(status);
            }
            u->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
            u->cpu_ms = cpu_ms_of(&ru);
            u->max_rss_kb = ru.ru_maxrss;
        }
        *alive = 0;
    }
    return 0;
}

/* Children inherit the zygote's stack: once a unit's numbers (exit code, CPU, RSS, times) have
 * gone out, the stack below the serving frame (where they were parsed and formatted) is wiped,
 * so a later run cannot read them back from the memory it inherited. */
static void __attribute__((noinline)) scrub_stack(void) {
    char buf[16384];
    explicit_bzero(buf, sizeof buf);
}

/* An 'o' frame: u32 length of the meta JSON, the meta JSON, then stdout, stderr and the result
 * value as raw bytes, written straight from the arena. */
static int send_unit(const struct unit_out *u) {
    char meta[512], code[16], sig[16];
    if (u->rc_known && !u->signaled)
        snprintf(code, sizeof code, "%d", u->rc);
    else if (u->exit_code_known)
        snprintf(code, sizeof code, "%d", u->exit_code);
    else
        strcpy(code, "null");
    if (u->signaled)
        snprintf(sig, sizeof sig, "%d", u->rc);
    else if (u->signal)
        snprintf(sig, sizeof sig, "%d", u->signal);
    else
        strcpy(sig, "null");
    char why[96] = "";
    if (u->timed_out)
        snprintf(why, sizeof why, ", \"timeout_kind\": \"%s\", \"cpu_wait_ms\": %.3f",
                 u->timed_out == TIMED_OUT_CPU ? "cpu" : "wall", u->waited_ms);
    int m = snprintf(meta, sizeof meta,
                     "{\"exit_code\": %s, \"signal\": %s, \"wall_ms\": %.3f, \"cpu_ms\": %.3f, "
                     "\"max_rss_kb\": %lld, \"truncated\": %s, \"timed_out\": %s%s, "
                     "\"output_limit\": %s%s%s, \"lengths\": [%zu, %zu, %zu]}",
                     code, sig, u->wall_ms, u->cpu_ms, u->max_rss_kb,
                     u->truncated ? "true" : "false", u->timed_out ? "true" : "false", why,
                     u->output_limit ? "true" : "false",
                     u->compile_error ? ", \"compile_error\": true" : "",
                     u->stopped ? ", \"stopped\": true" : "", u->out_len, u->err_len, u->val_len);
    if (m < 0 || (size_t)m >= sizeof meta)
        return fail("unit meta too long");
    size_t total = 4 + (size_t)m + u->out_len + u->err_len + u->val_len;
    if (total > UINT32_MAX)
        return fail("unit frame too long");
    unsigned char hdr[9];
    uint32_t len = (uint32_t)total, mlen = (uint32_t)m;
    memcpy(hdr, &len, 4);
    hdr[4] = ZP_UNIT;
    memcpy(hdr + 5, &mlen, 4);
    struct iovec v[5] = {{hdr, 9},
                         {meta, (size_t)m},
                         {arena, u->out_len},
                         {arena + u->err_off, u->err_len},
                         {arena + u->val_off, u->val_len}};
    int r = write_allv(CTL, v, 5);
    explicit_bzero(meta, sizeof meta);
    return r;
}

static uint32_t min3(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t m = a < b ? a : b;
    return m < c ? m : c;
}

/* A plain run ('Q') or a tests request ('U'): a spare T (forked ahead, isolated, waiting) runs
 * the units one after another; when one ends T, a new T runs the rest. The request leaves the
 * zygote's memory before the next spare is forked: a copy for such restarts waits in a memfd,
 * which children close before anything else. Returns 0 (answered), ZH_CHILD, or -1 (broken). */
static int serve_units(unsigned char kind, uint32_t n, uint32_t budget_ms) {
    uint32_t n_units = 1, timeout_ms = budget_ms, cap = cfg.max_output_bytes, per = 1;
    unsigned char *body = req_buf;
    size_t body_len = n;
    int key = 0, upp = units_per_process(0);
    if (kind == ZP_TESTS) {
        uint32_t h[4];
        if (n < sizeof h)
            return fail("short tests request");
        memcpy(h, req_buf, sizeof h);
        n_units = h[0], timeout_ms = h[1], cap = h[2], per = (uint32_t)units_per_process((int)h[3]);
        body += sizeof h;
        body_len -= sizeof h;
        key = upp > 1;
    }
    struct child cur = spares[key];
    double t0 = now_s();
    stop_requested = 0;
    uint32_t count = min3(n_units, per, (uint32_t)cur.n_units);
    int keep = -1, r;
    if (n_units > 1) { /* T may die before its last unit */
        keep = memfd_create("request", MFD_CLOEXEC);
        if (keep < 0 || write_all(keep, body, body_len) != 0)
            return fail("request memfd");
    }
    send_units(&cur, kind, 0, count, body, body_len);
    memset(req_buf, 0, n); /* no later run may find this request in memory inherited from us */
    /* Forks while this run executes on the other core. */
    r = spawn(&spares[key], key ? upp : 1, 1, cfg.own_pidns);
    if (r != 0)
        return r;
    uint32_t done = 0;
    int compile_error = 0;
    for (;;) {
        for (uint32_t k = 0; k < count; k++) {
            struct unit_out u;
            int alive;
            if (collect_unit(&cur, (int)k, timeout_ms, cap, t0, &u, &alive) != 0)
                return -1;
            compile_error = compile_error || (done == 0 && u.compile_error);
            int sent = send_unit(&u);
            explicit_bzero(&u, sizeof u);
            scrub_stack();
            if (sent != 0)
                return fail("write to daemon");
            done++;
            t0 = now_s();
            if (!alive || compile_error || stop_requested)
                break;
        }
        if (cur.n_units) /* T ended early: its unused pipes */
            close_child(&cur, 1, NULL, NULL);
        if (done >= n_units || compile_error || stop_requested)
            break;
        count = min3(n_units - done, per, MAX_UNITS);
        r = spawn(&cur, (int)count, 1, cfg.own_pidns);
        if (r != 0)
            return r;
        if (pread(keep, req_buf, body_len, 0) != (ssize_t)body_len)
            return fail("reading the request memfd");
        send_units(&cur, kind, done, count, req_buf, body_len);
        memset(req_buf, 0, body_len);
        t0 = now_s();
    }
    if (keep >= 0)
        close(keep);
    /* A compile error is the request's answer (U); a plain run (Q) shows it as its stderr. */
    const char *rep = compile_error && kind == ZP_TESTS ? "{\"compile_error\": true}"
                      : stop_requested               ? "{\"stopped\": true}"
                                                     : "{}";
    if (send_frame(ZP_REPORT, rep, strlen(rep)) != 0)
        return fail("write to daemon");
    reap_later();
    const char *done_frame = "{\"status\": 0, \"killed\": false}";
    if (send_frame(ZP_DONE, done_frame, strlen(done_frame)) != 0)
        return fail("write to daemon");
    return 0;
}

/* For zygote.py: a harness G captures its T's units here too (`out` as zh_spawn filled it, the
 * request already sent), one after another (a runner T spawns a program per unit and reports
 * each), streaming each as an 'o' frame, and reaps T before the harness reads any result file.
 * Returns how many were captured before T died (a unit past its deadline or over the output
 * cap kills T), n when all were, or -1. */
int zh_harness_units(const int32_t *out, int n, uint32_t timeout_ms, uint32_t cap) {
    struct child c;
    memset(&c, 0, sizeof c);
    c.pid = out[0];
    c.ctl_w = -1;
    c.pidfd = out[2];
    c.n_units = c.started = n;
    for (int k = 0; k < n; k++)
        for (int j = 0; j < 3; j++)
            c.fds[k][j] = out[3 + 3 * k + j];
    int done = 0, alive = 1;
    while (done < n && alive) {
        struct unit_out u;
        if (collect_unit(&c, done, timeout_ms, cap, now_s(), &u, &alive) != 0)
            return -1;
        int sent = send_unit(&u);
        explicit_bzero(&u, sizeof u);
        if (sent != 0)
            return fail("write to daemon");
        done++;
        if (stop_requested)
            break;
    }
    if (c.n_units)
        close_child(&c, 1, NULL, NULL);
    reap_later();
    return done;
}

/* For zygote.py: whether the daemon said stop during this harness's units. */
int zh_stopped(void) { return stop_requested; }

unsigned char *zh_request(void) { return req_buf; }
uint32_t zh_request_len(void) { return req_len; }
uint32_t zh_request_budget(void) { return req_budget; }

/* The zygote's loop: serves plain runs and tests requests here, and returns a request's kind
 * for the others (zygote.py serves them from zh_request() and calls again). Returns ZH_CHILD in
 * a forked T and -1 when the slot is broken (zh_error says why). The daemon closing the
 * control socket ends the zygote. */
int zh_serve(void) {
    int upp = units_per_process(0);
    for (;;) {
        for (int key = 0; key < 1 + (upp > 1); key++) {
            if (spares[key].pid == 0) {
                int r = spawn(&spares[key], key ? upp : 1, 1, cfg.own_pidns);
                if (r != 0)
                    return r;
            }
        }
        unsigned char hdr[9];
        uint32_t n, budget;
        if (read_exact(CTL, hdr, sizeof hdr) != 0)
            _exit(0);
        memcpy(&n, hdr, 4);
        memcpy(&budget, hdr + 5, 4);
        if (n > req_cap) {
            size_t want = n < (1u << 20) ? (1u << 20) : n;
            if (req_buf)
                munmap(req_buf, req_cap);
            req_buf = dontfork_map(want);
            req_cap = req_buf ? want : 0;
            if (!req_buf)
                return fail("request buffer");
        }
        if (read_exact(CTL, req_buf, n) != 0)
            _exit(0);
        if (hdr[4] == ZP_STOP)
            continue; /* a stop that came after its request had ended */
        req_len = n;
        req_budget = budget;
        if (hdr[4] != ZP_RUN && hdr[4] != ZP_TESTS)
            return hdr[4];
        int r = serve_units(hdr[4], n, budget);
        if (r != 0)
            return r;
    }
}

/* Tells the daemon why the slot is broken (a 'r' frame with harness_error) and exits. */
void zh_die(void) {
    char msg[700];
    int m = snprintf(msg, sizeof msg, "{\"harness_error\": \"");
    for (const char *p = err_buf; *p && m < (int)sizeof msg - 4; p++)
        msg[m++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) ? '?' : *p;
    msg[m++] = '"';
    msg[m++] = '}';
    send_frame(ZP_REPORT, msg, (size_t)m);
    _exit(1);
}
