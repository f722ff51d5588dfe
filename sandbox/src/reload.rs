//! Files the daemon reads again on SIGHUP (the TCP token, the TLS certificate and key), so that
//! they rotate without a restart. The signal handler only bumps a counter; each value notices
//! the change the next time it is asked for (per request for the token, per connection for
//! TLS), in an ordinary thread where reading files and logging are safe.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// SIGHUPs received so far.
pub static HANGUPS: AtomicU64 = AtomicU64::new(0);

type Loader<T> = Box<dyn Fn() -> Result<Arc<T>, String> + Send + Sync>;

/// A value loaded from files, loaded again after each SIGHUP. A reload that fails keeps the
/// value in use (with a warning in the log): a half-written file must not take the listener down.
pub struct Reloadable<T: ?Sized> {
    what: &'static str,
    load: Loader<T>,
    seen: AtomicU64,
    current: RwLock<Arc<T>>,
}

impl<T: ?Sized> Reloadable<T> {
    /// Loads the value now; an error here is a start-up error.
    pub fn new(
        what: &'static str,
        load: impl Fn() -> Result<Arc<T>, String> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let seen = HANGUPS.load(Ordering::SeqCst);
        Ok(Reloadable {
            what,
            current: RwLock::new(load()?),
            load: Box::new(load),
            seen: AtomicU64::new(seen),
        })
    }

    /// The value to use now, after the reload a SIGHUP since the last call asked for.
    pub fn current(&self) -> Arc<T> {
        let hangups = HANGUPS.load(Ordering::SeqCst);
        if self.seen.swap(hangups, Ordering::SeqCst) != hangups {
            match (self.load)() {
                Ok(v) => {
                    *self.current.write().unwrap_or_else(|e| e.into_inner()) = v;
                    crate::log::info("reloaded", &[("what", self.what.into())]);
                }
                Err(e) => crate::log::warn(
                    "not reloaded: the one in use stays",
                    &[("what", self.what.into()), ("error", e.into())],
                ),
            }
        }
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn reloads_once_per_hangup_and_keeps_the_old_value_on_failure() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let cell = Reloadable::new("test value", move || {
            match c.fetch_add(1, Ordering::SeqCst) {
                1 => Err("broken".to_string()),
                n => Ok(Arc::new(n)),
            }
        })
        .unwrap();
        assert_eq!(*cell.current(), 0);
        assert_eq!(*cell.current(), 0); // no hangup: no reload
        HANGUPS.fetch_add(1, Ordering::SeqCst);
        assert_eq!(*cell.current(), 0); // the reload failed: the old value stays
        HANGUPS.fetch_add(1, Ordering::SeqCst);
        assert_eq!(*cell.current(), 2);
        assert_eq!(*cell.current(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
