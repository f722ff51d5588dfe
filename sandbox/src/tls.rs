//! TLS for the TCP listener (rustls, TLS 1.2 and 1.3): daemons on other hosts are reached over
//! networks where the bearer token and the programs must not travel in the clear. The Unix
//! socket stays plain: it never leaves the host.
//!
//! The certificate chain and key are PEM files (`server.tls_cert`, `server.tls_key`), read
//! again on SIGHUP: each new connection takes the configuration current when it is accepted,
//! connections already open keep theirs.

use crate::reload::Reloadable;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub type TlsConfig = Reloadable<ServerConfig>;
pub type TlsStream = StreamOwned<ServerConnection, TcpStream>;

/// The server configuration for a certificate chain and its key. The key file must be the
/// daemon's alone (as the token file); errors name the file and what is wrong with it.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("server.tls_cert {}: {}", cert.display(), pem_error(e)))?;
    if certs.is_empty() {
        return Err(format!(
            "server.tls_cert {}: no PEM certificate in it (want `-----BEGIN CERTIFICATE-----`)",
            cert.display()
        ));
    }
    crate::auth::check_private_file(key, "server.tls_key")?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("server.tls_key {}: {}", key.display(), pem_error(e)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(key_der.clone_key())
        .map_err(|e| format!("server.tls_key {}: {e}", key.display()))?;
    let certified = rustls::sign::CertifiedKey::new(certs.clone(), signing_key);
    certified.keys_match().map_err(|e| {
        format!(
            "server.tls_key {} does not belong to the first certificate of server.tls_cert {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("server.tls_cert {}: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of the right kind in it".into(),
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// The listener's configuration, reloaded after SIGHUP.
pub fn tls_config(cert: &str, key: &str) -> Result<TlsConfig, String> {
    let (cert, key) = (PathBuf::from(cert), PathBuf::from(key));
    Reloadable::new("tls certificate", move || load_server_config(&cert, &key))
}

/// A connection just accepted; its handshake happens on its first read, in its own thread, so
/// a slow or hostile client holds up only that thread, never the accept loop.
pub fn wrap(config: &TlsConfig, tcp: TcpStream) -> std::io::Result<TlsStream> {
    let conn = ServerConnection::new(config.current()).map_err(std::io::Error::other)?;
    Ok(StreamOwned::new(conn, tcp))
}

impl crate::server::Transport for TlsStream {
    fn set_timeouts(&self) {
        crate::server::Transport::set_timeouts(&self.sock);
    }

    fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.sock)
    }

    fn peer(&self) -> crate::connections::Peer {
        crate::server::Transport::peer(&self.sock)
    }

    /// close_notify, then the socket's sending half: what the client still sends is read.
    fn half_close(&mut self) {
        self.finish();
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
    }

    /// A "busy" answer would need a whole handshake in the accept loop: such a connection is
    /// closed instead.
    fn answers_busy(&self) -> bool {
        false
    }

    /// close_notify, so the client can tell the end of the connection from a truncation, or the
    /// alert of a failed handshake. Written directly: `flush` would go on with a handshake that
    /// never finished, waiting on the peer for up to the read timeout.
    fn finish(&mut self) {
        self.conn.send_close_notify();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("grpo-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn self_signed() -> (String, String) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        (ck.cert.pem(), ck.key_pair.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_key_load() {
        let d = dir("ok");
        let (cert, key) = self_signed();
        write(&d.join("cert.pem"), &cert, 0o644);
        write(&d.join("key.pem"), &key, 0o600);
        let config = load_server_config(&d.join("cert.pem"), &d.join("key.pem")).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_files_are_refused_with_the_file_named() {
        let d = dir("bad");
        let (cert, key) = self_signed();
        let (_, other_key) = self_signed();
        let (c, k) = (d.join("cert.pem"), d.join("key.pem"));
        write(&c, &cert, 0o644);
        write(&k, &key, 0o644);
        let err = load_server_config(&c, &k).unwrap_err();
        assert!(
            err.contains("server.tls_key") && err.contains("chmod 600"),
            "{err}"
        );
        write(&k, &other_key, 0o600);
        let err = load_server_config(&c, &k).unwrap_err();
        assert!(err.contains("does not belong"), "{err}");
        write(&k, "not a key\n", 0o600);
        let err = load_server_config(&c, &k).unwrap_err();
        assert!(
            err.contains("key.pem") && err.contains("no PEM item"),
            "{err}"
        );
        write(&k, &key, 0o600);
        write(&c, &key, 0o644); // a key where the certificate should be
        let err = load_server_config(&c, &k).unwrap_err();
        assert!(
            err.contains("server.tls_cert") && err.contains("cert.pem"),
            "{err}"
        );
        let err = load_server_config(&d.join("missing.pem"), &k).unwrap_err();
        assert!(err.contains("missing.pem"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
