//! Who holds the daemon's connections, how long each may take, and which to let go when they run
//! out.
//!
//! A thread serves each connection, so connections are what a hostile client goes after:
//! hundreds that connect and say nothing, or trickle one header line at a time, would otherwise
//! hold every thread while the clients that have the token get "busy". The rules:
//!
//! - A TCP peer (an address) holds at most `server.max_connections_per_peer` connections; more
//!   are refused at once.
//! - A connection that has not made an authorized request yet (on the Unix socket: a complete
//!   request head) is *pending*. At most `server.max_pending_connections` are; beyond that a new
//!   one closes the oldest pending connection of the peer that holds the most, so a flooding
//!   peer evicts its own connections, not those of a client that sent one request head.
//! - At `server.max_connections`, a new connection closes a pending one, else the longest idle
//!   keep-alive one; only when every connection is in the middle of a request is it refused
//!   (503 busy).
//! - Every phase has a deadline: a request head `server.header_timeout_s` from its first byte
//!   (a new connection's first head from the connect, TLS handshake included), head and body
//!   together and the answer's writing `server.request_timeout_s` each, the wait between
//!   requests `server.idle_timeout_s`. Socket read timeouts alone restart with every byte, so a
//!   client trickling a byte at a time would never meet them; a watchdog checks the deadlines
//!   instead.
//!
//! A connection is closed by `shutdown(2)` on its socket, which ends the read or write its
//! thread is blocked in; past a read deadline only the reading half is shut, so the thread can
//! still answer 408. A connection leaves the registry before its socket is closed, and shutdowns
//! happen under the registry's lock, so a descriptor in the registry is always its own.

use crate::config::ServerConfig;
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Who is on the other end: the address of a TCP peer, the user of a Unix socket peer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Peer {
    Ip(IpAddr),
    Uid(u32),
    Unknown,
}

/// Where a connection is in its request cycle.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Waiting for the first byte of a request (a new connection: its TLS handshake too).
    Waiting,
    Head,
    Body,
    /// The request is being served: no deadline here (the runs have their own limits).
    Working,
    Writing,
    /// Answered with a refusal (401, 413, ...): reading what the client still sends, briefly,
    /// so that closing does not reset the connection before the client has read the answer.
    Closing,
}

/// Why the daemon closed a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Closed {
    TimedOut(Phase),
    Shed,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
enum Class {
    /// Never authorized and not in the middle of anything that costs us: closed first.
    Pending,
    /// Authorized before, waiting for its next request.
    Idle,
    /// Mid-request: never closed to make room.
    Busy,
}

struct Entry {
    fd: RawFd,
    peer: Peer,
    phase: Phase,
    authorized: bool,
    opened: Instant,
    since: Instant,
    deadline: Option<Instant>,
    closed: Option<Closed>,
}

impl Entry {
    fn class(&self) -> Class {
        match (self.phase, self.authorized) {
            (Phase::Closing, _) | (Phase::Waiting | Phase::Head, false) => Class::Pending,
            (Phase::Waiting, true) => Class::Idle,
            _ => Class::Busy,
        }
    }
}

/// The limits `Connections` enforces (from `[server]`).
#[derive(Clone, Debug)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub max_per_peer: usize,
    pub max_pending: usize,
    pub header: Duration,
    pub request: Duration,
    pub idle: Duration,
    /// How long a refused client gets to take its answer before the connection is closed.
    pub linger: Duration,
}

impl ConnLimits {
    pub fn from_config(s: &ServerConfig) -> ConnLimits {
        ConnLimits {
            max_connections: s.max_connections,
            max_per_peer: s.max_connections_per_peer,
            max_pending: s.max_pending_connections,
            header: Duration::from_secs_f64(s.header_timeout_s),
            request: Duration::from_secs_f64(s.request_timeout_s),
            idle: Duration::from_secs_f64(s.idle_timeout_s),
            linger: Duration::from_secs(2),
        }
    }
}

/// Counters for `/health` and `/metrics`.
#[derive(Default)]
pub struct ConnStats {
    pub accepted: AtomicU64,
    pub shed_pending: AtomicU64,
    pub shed_idle: AtomicU64,
    pub refused_per_peer: AtomicU64,
    pub refused_full: AtomicU64,
    pub timed_out: AtomicU64,
}

/// A refused connection: why, in words for the 503 answer.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    PerPeer,
    Full,
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::PerPeer => "too many connections from this address",
            Refusal::Full => "too many connections, all of them in the middle of a request",
        }
    }
}

pub struct Connections {
    limits: ConnLimits,
    state: Mutex<State>,
    pub stats: ConnStats,
}

#[derive(Default)]
struct State {
    next: u64,
    entries: HashMap<u64, Entry>,
}

/// One admitted connection; dropping it takes the connection off the registry (drop it before
/// the socket is closed).
pub struct Ticket {
    conns: Arc<Connections>,
    id: u64,
}

impl Connections {
    pub fn new(limits: ConnLimits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            state: Mutex::new(State::default()),
            stats: ConnStats::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection just accepted, making room by closing others where the rules say.
    pub fn admit(self: &Arc<Self>, fd: RawFd, peer: Peer) -> Result<Ticket, Refusal> {
        let now = Instant::now();
        let mut st = self.lock();
        let live = || st.entries.values().filter(|e| e.closed.is_none());
        if matches!(peer, Peer::Ip(_))
            && live().filter(|e| e.peer == peer).count() >= self.limits.max_per_peer
        {
            self.stats.refused_per_peer.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::PerPeer);
        }
        let pending = live().filter(|e| e.class() == Class::Pending).count();
        let total = live().count();
        if pending >= self.limits.max_pending || total >= self.limits.max_connections {
            let candidates: Vec<Candidate> = st
                .entries
                .iter()
                .filter(|(_, e)| e.closed.is_none())
                .map(|(id, e)| Candidate {
                    id: *id,
                    peer: e.peer,
                    class: e.class(),
                    opened: e.opened,
                    since: e.since,
                })
                .collect();
            let only_pending = total < self.limits.max_connections;
            match victim(&candidates, only_pending) {
                Some((id, class)) => {
                    if let Some(e) = st.entries.get_mut(&id) {
                        close(e, Closed::Shed, libc::SHUT_RDWR);
                    }
                    let c = if class == Class::Pending {
                        &self.stats.shed_pending
                    } else {
                        &self.stats.shed_idle
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
                // Over the pending budget with nothing pending to close: only the total counts.
                None if only_pending => {}
                None => {
                    self.stats.refused_full.fetch_add(1, Ordering::Relaxed);
                    return Err(Refusal::Full);
                }
            }
        }
        st.next += 1;
        let id = st.next;
        st.entries.insert(
            id,
            Entry {
                fd,
                peer,
                phase: Phase::Waiting,
                authorized: false,
                opened: now,
                since: now,
                deadline: Some(now + self.limits.header),
                closed: None,
            },
        );
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            conns: self.clone(),
            id,
        })
    }

    /// Closes every connection past its deadline; the watchdog calls this a few times a second.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut st = self.lock();
        for e in st.entries.values_mut() {
            if e.closed.is_none() && e.deadline.is_some_and(|d| d <= now) {
                let how = if e.phase == Phase::Writing {
                    libc::SHUT_RDWR
                } else {
                    libc::SHUT_RD
                };
                close(e, Closed::TimedOut(e.phase), how);
                self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// (open, pending) connections right now.
    pub fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        let live: Vec<_> = st.entries.values().filter(|e| e.closed.is_none()).collect();
        let pending = live.iter().filter(|e| e.class() == Class::Pending).count();
        (live.len(), pending)
    }

    pub fn limits(&self) -> &ConnLimits {
        &self.limits
    }
}

fn close(e: &mut Entry, why: Closed, how: libc::c_int) {
    e.closed = Some(why);
    e.deadline = None;
    // SAFETY: the descriptor belongs to this entry's connection, which cannot close it before
    // leaving the registry (whose lock the caller holds).
    unsafe { libc::shutdown(e.fd, how) };
}

impl Ticket {
    fn with<R>(&self, f: impl FnOnce(&mut Entry, &ConnLimits) -> R) -> Option<R> {
        let mut st = self.conns.lock();
        st.entries
            .get_mut(&self.id)
            .map(|e| f(e, &self.conns.limits))
    }

    /// The first byte of a request arrived: its head is due within the header timeout (a new
    /// connection's first head keeps the deadline it got when it connected).
    pub fn request_started(&self) {
        self.with(|e, l| {
            let now = Instant::now();
            if e.authorized || e.phase != Phase::Waiting || e.since != e.opened {
                e.deadline = Some(now + l.header);
            }
            e.phase = Phase::Head;
            e.since = now;
        });
    }

    /// The head carried what this listener wants (the token, or nothing on the Unix socket).
    pub fn authorized(&self) {
        self.with(|e, _| e.authorized = true);
    }

    /// The body is due within the request timeout, counted from the request's first byte.
    pub fn reading_body(&self) {
        self.phase(Phase::Body, |e, l| Some(e.since + l.request));
    }

    pub fn working(&self) {
        self.phase(Phase::Working, |_, _| None);
    }

    pub fn writing(&self) {
        self.phase(Phase::Writing, |_, l| Some(Instant::now() + l.request));
    }

    /// Answered; waiting for the next request on the kept-alive connection.
    pub fn idle(&self) {
        self.with(|e, l| {
            e.phase = Phase::Waiting;
            e.since = Instant::now();
            e.deadline = Some(e.since + l.idle);
        });
    }

    /// Refused: a short while to take the answer, then closed.
    pub fn closing(&self) {
        self.phase(Phase::Closing, |_, l| Some(Instant::now() + l.linger));
    }

    fn phase(&self, p: Phase, deadline: impl FnOnce(&Entry, &ConnLimits) -> Option<Instant>) {
        self.with(|e, l| {
            if e.closed.is_none() {
                e.deadline = deadline(e, l);
            }
            e.phase = p;
        });
    }

    /// Why the daemon closed this connection, if it did.
    pub fn closed(&self) -> Option<Closed> {
        self.with(|e, _| e.closed).flatten()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.conns.lock().entries.remove(&self.id);
    }
}

/// What `victim` sees of a connection.
#[derive(Clone, Debug)]
struct Candidate {
    id: u64,
    peer: Peer,
    class: Class,
    opened: Instant,
    since: Instant,
}

/// The connection to close to make room: a pending one, of the peer holding the most pending
/// connections, its oldest; else (unless `only_pending`) the connection idle the longest.
fn victim(candidates: &[Candidate], only_pending: bool) -> Option<(u64, Class)> {
    let mut per_peer: HashMap<Peer, usize> = HashMap::new();
    for c in candidates.iter().filter(|c| c.class == Class::Pending) {
        *per_peer.entry(c.peer).or_default() += 1;
    }
    let pending = candidates
        .iter()
        .filter(|c| c.class == Class::Pending)
        .max_by(|a, b| {
            per_peer[&a.peer]
                .cmp(&per_peer[&b.peer])
                .then(b.opened.cmp(&a.opened))
                .then(b.id.cmp(&a.id))
        });
    if let Some(c) = pending {
        return Some((c.id, Class::Pending));
    }
    if only_pending {
        return None;
    }
    candidates
        .iter()
        .filter(|c| c.class == Class::Idle)
        .min_by(|a, b| a.since.cmp(&b.since).then(a.id.cmp(&b.id)))
        .map(|c| (c.id, Class::Idle))
}

/// The uid of a Unix socket's peer (`SO_PEERCRED`).
pub fn unix_peer(fd: RawFd) -> Peer {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut libc::c_void,
            &mut len,
        )
    };
    if rc == 0 {
        Peer::Uid(cred.uid)
    } else {
        Peer::Unknown
    }
}

/// Starts the thread that enforces the deadlines.
pub fn watchdog(conns: Arc<Connections>) {
    let _ = std::thread::Builder::new()
        .name("conn-deadlines".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            conns.sweep();
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> Peer {
        Peer::Ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    fn cand(id: u64, peer: Peer, class: Class, age_s: u64) -> Candidate {
        let t0 = Instant::now();
        let at = t0.checked_sub(Duration::from_secs(age_s)).unwrap_or(t0);
        Candidate {
            id,
            peer,
            class,
            opened: at,
            since: at,
        }
    }

    #[test]
    fn the_peer_with_most_pending_loses_its_oldest() {
        let c = [
            cand(1, ip(1), Class::Pending, 50), // the oldest overall, but its peer has one
            cand(2, ip(2), Class::Pending, 10),
            cand(3, ip(2), Class::Pending, 30),
            cand(4, ip(2), Class::Pending, 5),
            cand(5, ip(3), Class::Idle, 100),
        ];
        assert_eq!(victim(&c, false), Some((3, Class::Pending)));
    }

    #[test]
    fn idle_keep_alive_goes_only_when_nothing_is_pending() {
        let c = [
            cand(1, ip(1), Class::Busy, 500),
            cand(2, ip(1), Class::Idle, 20),
            cand(3, ip(2), Class::Idle, 40),
        ];
        assert_eq!(victim(&c, false), Some((3, Class::Idle)));
        assert_eq!(
            victim(&c, true),
            None,
            "the pending budget never closes idle ones"
        );
        assert_eq!(
            victim(&c[..1], false),
            None,
            "busy connections are never closed"
        );
    }

    fn limits(max_connections: usize, max_per_peer: usize, max_pending: usize) -> ConnLimits {
        ConnLimits {
            max_connections,
            max_per_peer,
            max_pending,
            header: Duration::from_millis(200),
            request: Duration::from_secs(5),
            idle: Duration::from_secs(5),
            linger: Duration::from_millis(100),
        }
    }

    /// A real socket pair, so the shutdowns act on descriptors of our own.
    fn pair() -> (
        std::os::unix::net::UnixStream,
        std::os::unix::net::UnixStream,
    ) {
        std::os::unix::net::UnixStream::pair().unwrap()
    }

    fn fd(s: &std::os::unix::net::UnixStream) -> RawFd {
        use std::os::fd::AsRawFd;
        s.as_raw_fd()
    }

    #[test]
    fn admission_sheds_pending_first_then_idle_then_refuses() {
        let conns = Connections::new(limits(3, 10, 2));
        let socks: Vec<_> = (0..6).map(|_| pair()).collect();
        let a = conns.admit(fd(&socks[0].0), ip(1)).unwrap();
        a.authorized();
        a.idle();
        let b = conns.admit(fd(&socks[1].0), ip(2)).unwrap();
        let c = conns.admit(fd(&socks[2].0), ip(2)).unwrap();
        // Pending budget (2) reached: ip(2)'s oldest pending (b) makes room.
        let d = conns.admit(fd(&socks[3].0), ip(3)).unwrap();
        assert_eq!(b.closed(), Some(Closed::Shed));
        assert_eq!(conns.counts(), (3, 2));
        // Total (3) reached, pending c and d: one of the peers with one each goes (the oldest, c).
        let e = conns.admit(fd(&socks[4].0), ip(4)).unwrap();
        assert_eq!(c.closed(), Some(Closed::Shed));
        for t in [&d, &e] {
            t.request_started();
            t.authorized();
            t.working();
        }
        // Now a is idle, d and e busy: a goes; then nothing can.
        let f = conns.admit(fd(&socks[5].0), ip(5)).unwrap();
        assert_eq!(a.closed(), Some(Closed::Shed));
        f.request_started();
        f.authorized();
        f.working();
        let g = pair();
        assert_eq!(conns.admit(fd(&g.0), ip(6)).err(), Some(Refusal::Full));
        let mut buf = [0u8; 1];
        use std::io::Read;
        // The shed connection's socket was shut: a read on it ends at once.
        assert_eq!((&socks[0].0).read(&mut buf).unwrap(), 0);
        drop((b, c));
        assert_eq!(conns.counts(), (3, 0));
    }

    #[test]
    fn a_peer_over_its_limit_is_refused_and_others_are_not() {
        let conns = Connections::new(limits(100, 2, 100));
        let socks: Vec<_> = (0..4).map(|_| pair()).collect();
        let _a = conns.admit(fd(&socks[0].0), ip(1)).unwrap();
        let _b = conns.admit(fd(&socks[1].0), ip(1)).unwrap();
        assert_eq!(
            conns.admit(fd(&socks[2].0), ip(1)).err(),
            Some(Refusal::PerPeer)
        );
        assert!(conns.admit(fd(&socks[3].0), ip(2)).is_ok());
        // Unix peers (uids) have no such limit.
        let more: Vec<_> = (0..3).map(|_| pair()).collect();
        let _t: Vec<_> = more
            .iter()
            .map(|s| conns.admit(fd(&s.0), Peer::Uid(0)).unwrap())
            .collect();
    }

    #[test]
    fn deadlines_shut_the_reading_half_and_say_why() {
        let conns = Connections::new(limits(10, 10, 10));
        let (s, _peer) = pair();
        let t = conns.admit(fd(&s), ip(1)).unwrap();
        t.request_started(); // the first head keeps the deadline from the connect
        conns.sweep();
        assert_eq!(t.closed(), None);
        std::thread::sleep(Duration::from_millis(250));
        conns.sweep();
        assert_eq!(t.closed(), Some(Closed::TimedOut(Phase::Head)));
        assert_eq!(conns.stats.timed_out.load(Ordering::Relaxed), 1);
        let (s2, _p2) = pair();
        let t2 = conns.admit(fd(&s2), ip(1)).unwrap();
        t2.request_started();
        t2.authorized();
        t2.working(); // no deadline while the request is served
        std::thread::sleep(Duration::from_millis(250));
        conns.sweep();
        assert_eq!(t2.closed(), None);
    }
}
