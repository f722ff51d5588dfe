//! Builds of compiled programs, kept in memory by what produced them, so that a program seen
//! again (the same response sampled twice in a group, public then hidden tests of one answer)
//! skips its compile: a C++ compile costs ~0.3-1 s, a test a few ms.
//!
//! The key is a SHA-256 over everything the build depends on (language, compiler path and
//! version, flags, libraries, source name and text), so that no two programs can be made to
//! share an entry. A build is what the compiler left in the sandbox's /tmp, read by the harness
//! right after the compile and before any test runs, so nothing the program does at run time
//! reaches the cache. Hits run the same way as misses, in a fresh sandbox, with the build
//! written into its /tmp. Requests with `files` are never cached (a header among them could
//! change the build). Bounded by bytes, least recently used out first.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub type Key = [u8; 32];

/// The files of one build, as the harness sends and takes them: {path below /tmp: base64}.
pub type Build = Arc<serde_json::Map<String, Value>>;

struct Entry {
    build: Build,
    bytes: usize,
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    by_use: BTreeMap<u64, Key>,
    clock: u64,
    bytes: usize,
}

pub struct BuildCache {
    cap: usize,
    inner: Mutex<Inner>,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

/// What `/health` and `/metrics` show of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub cap: usize,
    pub hits: u64,
    pub misses: u64,
}

/// The key of a build: each part length-prefixed, so that parts cannot run into each other.
pub fn key(parts: &[&[u8]]) -> Key {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_le_bytes());
        ctx.update(p);
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(ctx.finish().as_ref());
    k
}

impl BuildCache {
    /// `cap` bytes of builds (their base64 text); 0 turns the cache off.
    pub fn new(cap: usize) -> BuildCache {
        BuildCache {
            cap,
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.cap > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The build for `key`, counted as a hit or a miss.
    pub fn get(&self, key: &Key) -> Option<Build> {
        let mut g = self.lock();
        let inner = &mut *g;
        inner.clock += 1;
        let found = match inner.entries.get_mut(key) {
            Some(e) => {
                inner.by_use.remove(&e.used);
                e.used = inner.clock;
                inner.by_use.insert(e.used, *key);
                Some(e.build.clone())
            }
            None => None,
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `build` under `key`, making room by dropping the least recently used; a build
    /// larger than a quarter of the cache is not kept (it would flush everything else).
    pub fn insert(&self, key: Key, build: serde_json::Map<String, Value>) {
        let bytes: usize = build
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if bytes > self.cap / 4 {
            return;
        }
        let mut g = self.lock();
        let inner = &mut *g;
        if let Some(old) = inner.entries.remove(&key) {
            inner.by_use.remove(&old.used);
            inner.bytes -= old.bytes;
        }
        while inner.bytes + bytes > self.cap {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= e.bytes;
            }
        }
        inner.clock += 1;
        let used = inner.clock;
        inner.by_use.insert(used, key);
        inner.bytes += bytes;
        inner.entries.insert(
            key,
            Entry {
                build: Arc::new(build),
                bytes,
                used,
            },
        );
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            entries: g.entries.len(),
            bytes: g.bytes,
            cap: self.cap,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(text: &str) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("main".into(), Value::from(text));
        m
    }

    #[test]
    fn keys_differ_whenever_a_part_does() {
        assert_eq!(key(&[b"cpp", b"int main"]), key(&[b"cpp", b"int main"]));
        assert_ne!(key(&[b"cpp", b"int main"]), key(&[b"c", b"int main"]));
        // Length prefixes: moving a byte from one part to the next is another key.
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_ne!(key(&[b"ab"]), key(&[b"ab", b""]));
    }

    #[test]
    fn hits_misses_and_least_recently_used_eviction() {
        let c = BuildCache::new(400); // room for four builds of 100 bytes ("main" + 96)
        let k: Vec<Key> = (0..5u8).map(|i| key(&[&[i]])).collect();
        assert!(c.get(&k[0]).is_none());
        for (i, ch) in ["x", "y", "z", "u"].iter().enumerate() {
            c.insert(k[i], build(&ch.repeat(96)));
        }
        assert_eq!(c.get(&k[0]).unwrap()["main"], "x".repeat(96)); // k0 is now the most recent
        c.insert(k[4], build(&"w".repeat(96))); // evicts k1, the least recently used
        assert!(c.get(&k[1]).is_none());
        assert!([0, 2, 3, 4].iter().all(|&i| c.get(&k[i]).is_some()));
        let s = c.stats();
        assert_eq!((s.entries, s.bytes, s.hits, s.misses), (4, 400, 5, 2));
        c.insert(key(&[b"big"]), build(&"v".repeat(97))); // over a quarter: not kept
        assert_eq!(c.stats().entries, 4);
        c.insert(k[0], build("short")); // replacing an entry frees its old bytes
        assert_eq!(c.stats().bytes, 300 + 9);
    }

    #[test]
    fn a_cache_of_zero_bytes_is_off() {
        assert!(!BuildCache::new(0).enabled());
        assert!(BuildCache::new(1).enabled());
    }
}
