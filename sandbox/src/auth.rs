//! Bearer-token authentication for the TCP listener. The Unix socket is guarded by its file
//! mode (0660, owned by the daemon's user); a TCP port is reachable by anyone on the network
//! (or, on loopback, by every local user), so there every request must carry the token.

use crate::reload::Reloadable;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::Arc;

/// The TCP listener's token, replaceable while the daemon runs: `kill -HUP` after writing a new
/// token file rotates it without a restart (connections already open check every request
/// against the current one). A file that no longer passes `load_token` keeps the old token.
pub type TokenCell = Reloadable<str>;

pub fn token_cell(path: &Path) -> Result<TokenCell, String> {
    let path = path.to_path_buf();
    Reloadable::new("token", move || load_token(&path).map(Arc::from))
}

/// Shortest token accepted: 16 characters of a random hex or base64 string is 64+ bits.
pub const MIN_TOKEN_LEN: usize = 16;

/// Reads the token from `path`: one line of visible ASCII (it travels in an HTTP header), at
/// least `MIN_TOKEN_LEN` long, in a file that neither group nor others may read.
pub fn load_token(path: &Path) -> Result<String, String> {
    check_private_file(path, "server.token_file")?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("server.token_file {}: {e}", path.display()))?;
    check_token(text.trim_end_matches(['\n', '\r']))
        .map_err(|e| format!("server.token_file {}: {e}", path.display()))
}

/// A secret's file (`key` names it in errors) must be the daemon's alone: neither group nor
/// others may read or write it.
pub fn check_private_file(path: &Path, key: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{key} {} has mode {:o}: group and others must not be able to read or write it \
             (chmod 600 it)",
            path.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The token itself: one line of visible ASCII, no spaces, long enough to not be guessed.
pub fn check_token(token: &str) -> Result<String, String> {
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!(
            "the token has {} characters; use at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)",
            token.len()
        ));
    }
    if let Some(c) = token.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "the token holds {c:?}: use visible ASCII only, on one line (it is sent in an HTTP header)"
        ));
    }
    Ok(token.to_string())
}

/// Whether an `Authorization` header value carries `token`. Compares in time independent of
/// where the first difference lies, so response timing does not leak the token byte by byte.
pub fn authorized(header: Option<&[u8]>, token: &str) -> bool {
    let Some(value) = header else {
        return false;
    };
    let Some(given) = value
        .strip_prefix(b"Bearer ")
        .or_else(|| value.strip_prefix(b"bearer "))
    else {
        return false;
    };
    let want = token.as_bytes();
    let mut diff = (given.len() != want.len()) as u8;
    for (i, w) in want.iter().enumerate() {
        diff |= w ^ given.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// True when every address `addr` names is a loopback one (127.0.0.0/8, ::1).
pub fn is_loopback(addr: &str) -> Result<bool, String> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| format!("server.tcp {addr:?}: {e}"))?
        .collect();
    Ok(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()))
}

/// The start-up rule: a TCP listener beyond loopback needs a token, unless the operator opted
/// out explicitly (a trusted private network with its own access control).
pub fn check_tcp_policy(
    tcp: &str,
    has_token: bool,
    allow_unauthenticated: bool,
) -> Result<(), String> {
    if tcp.is_empty() || has_token || allow_unauthenticated || is_loopback(tcp)? {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {tcp} without a token: anyone who can reach it could run programs here. \
         Set server.token_file (or --token-file), or server.allow_unauthenticated_tcp = true on a network \
         you control"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn only_the_exact_bearer_token_is_authorized() {
        assert!(authorized(Some(b"Bearer 0123456789abcdef0123"), TOKEN));
        assert!(authorized(Some(b"bearer 0123456789abcdef0123"), TOKEN));
        assert!(!authorized(None, TOKEN));
        assert!(!authorized(Some(b""), TOKEN));
        assert!(!authorized(Some(b"0123456789abcdef0123"), TOKEN));
        assert!(!authorized(Some(b"Basic 0123456789abcdef0123"), TOKEN));
        assert!(!authorized(Some(b"Bearer 0123456789abcdef012"), TOKEN)); // a prefix
        assert!(!authorized(Some(b"Bearer 0123456789abcdef01234"), TOKEN)); // longer
        assert!(!authorized(Some(b"Bearer 0123456789abcdef0124"), TOKEN)); // last byte
        assert!(!authorized(Some(b"Bearer 1123456789abcdef0123"), TOKEN)); // first byte
    }

    #[test]
    fn tokens_are_long_visible_ascii() {
        assert!(check_token(TOKEN).is_ok());
        assert!(check_token("short").unwrap_err().contains("at least 16"));
        assert!(check_token("0123456789 abcdef0123")
            .unwrap_err()
            .contains("' '"));
        assert!(check_token("0123456789abcdef\t0123").is_err());
        assert!(check_token("0123456789abcdéf0123").is_err());
    }

    #[test]
    fn a_token_file_others_can_read_is_refused() {
        let dir = std::env::temp_dir().join(format!("grpo-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_token(&f).unwrap_err();
        assert!(
            err.contains("mode 644") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_token(&f).unwrap(), TOKEN); // the trailing newline is not part of it
        std::fs::write(&f, "tiny\n").unwrap();
        assert!(load_token(&f).unwrap_err().contains("at least 16"));
        assert!(load_token(&dir.join("missing"))
            .unwrap_err()
            .contains("missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn beyond_loopback_tcp_needs_a_token_or_an_explicit_opt_out() {
        assert!(check_tcp_policy("", false, false).is_ok());
        assert!(check_tcp_policy("127.0.0.1:8787", false, false).is_ok());
        assert!(check_tcp_policy("[::1]:8787", false, false).is_ok());
        let err = check_tcp_policy("0.0.0.0:8787", false, false).unwrap_err();
        assert!(
            err.contains("token_file") && err.contains("0.0.0.0:8787"),
            "{err}"
        );
        assert!(check_tcp_policy("0.0.0.0:8787", true, false).is_ok());
        assert!(check_tcp_policy("0.0.0.0:8787", false, true).is_ok());
        assert!(check_tcp_policy("not an address", false, false).is_err());
    }
}
