//! systemd's readiness protocol (`Type=notify`): `READY=1` once the node serves,
//! `RELOADING=1` then `READY=1` around a reload, `STOPPING=1` at shutdown, sent as
//! datagrams to `$NOTIFY_SOCKET` when systemd set it (and nothing otherwise).

use std::io;

/// Sends `state` (e.g. `READY=1`) to systemd, if the node runs under it. Failures are
/// logged, never fatal: the protocol is advisory.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&socket.to_string_lossy(), state) {
        tracing::warn!(error = %e, state, "cannot tell systemd the node's state");
    }
}

#[cfg(target_os = "linux")]
fn send(socket: &str, state: &str) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let addr = match socket.strip_prefix('@') {
        // An abstract socket: its name starts with a NUL byte, which systemd writes as @.
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None if socket.starts_with('/') => SocketAddr::from_pathname(socket)?,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("NOTIFY_SOCKET={socket:?} is neither a path nor an abstract name"),
            ))
        }
    };
    let sent = UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short datagram"));
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn send(_socket: &str, _state: &str) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn states_arrive_on_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn a_relative_socket_name_is_refused() {
        let e = send("relative/notify", "READY=1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "NOTIFY_SOCKET=\"relative/notify\" is neither a path nor an abstract name"
        );
    }
}
