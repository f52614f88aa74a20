//! The client side of the control socket, used by `dagw status|reload|monitor`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{Reply, WireRequest};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach dagw at {path}: {source} (is the daemon running? use -s to name its socket)"
    )]
    Connect { path: String, source: io::Error },
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    #[error("unexpected answer from the daemon: {0}")]
    Protocol(String),
}

fn connect(path: &Path, req: WireRequest) -> Result<UnixStream, ClientError> {
    let mut s = UnixStream::connect(path).map_err(|source| ClientError::Connect {
        path: path.display().to_string(),
        source,
    })?;
    let mut line = serde_json::to_vec(&req).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    s.write_all(&line)?;
    Ok(s)
}

/// One request, one reply.
pub fn call(path: &Path, req: WireRequest) -> Result<Reply, ClientError> {
    let s = connect(path, req)?;
    // A reload of thousands of gateways takes seconds; status is immediate.
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut line = String::new();
    BufReader::new(s).take(64 << 20).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| {
        ClientError::Protocol(format!(
            "{e}: {}",
            line.chars().take(200).collect::<String>()
        ))
    })
}

/// Stream monitor lines to `f` until the daemon closes the socket.
pub fn monitor(path: &Path, mut f: impl FnMut(&str) -> io::Result<()>) -> Result<(), ClientError> {
    let s = connect(path, WireRequest::Monitor)?;
    for line in BufReader::new(s).lines() {
        f(&line?)?;
    }
    Ok(())
}
