//! Listening sockets: the API's (shareable by several processes of one host) and the first free
//! port of a range (each process's own metrics).

use std::io;
use std::net::{SocketAddr, TcpListener};

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::PortRange;

/// Connections the kernel keeps waiting for `accept` (a burst of fans opening connections at
/// once); the kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;

/// A listener on `addr`. With `reuse_port`, other processes (of the same user) may listen on the
/// same address and the kernel spreads new connections among them.
pub fn listener(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// A listener on the first free port of `range`; `variable` names the setting in the error.
pub fn first_free(range: &PortRange, variable: &str) -> anyhow::Result<TcpListener> {
    let mut last = None;
    for addr in range.addrs() {
        match listener(addr, false) {
            Ok(listener) => return Ok(listener),
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => last = Some(err),
            Err(err) => return Err(err).with_context(|| format!("bind {addr} ({variable})")),
        }
    }
    let err = last.unwrap_or_else(|| io::Error::other("empty range"));
    Err(err).with_context(|| format!("no free port in {range} ({variable}): widen the range or set another"))
}
