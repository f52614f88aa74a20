//! Netlink framing and the blocking request socket.

use std::io;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::NetlinkError;

pub type Msg = NetlinkMessage<RouteNetlinkMessage>;

const RECV_BUF: usize = 256 * 1024;
/// Every request has an answer within this, or it is reported as a timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Split a datagram into netlink messages. Undecodable messages are returned as
/// errors in place, so one bad message does not hide the rest.
pub fn split(buf: &[u8]) -> Vec<Result<Msg, NetlinkError>> {
    let mut out = Vec::new();
    let mut off = 0;
    while buf.len() - off >= 16 {
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        if len < 16 || off + len > buf.len() {
            out.push(Err(NetlinkError::Malformed(format!(
                "bad length {len} at offset {off}"
            ))));
            break;
        }
        out.push(
            Msg::deserialize(&buf[off..off + len])
                .map_err(|e| NetlinkError::Malformed(e.to_string())),
        );
        off += (len + 3) & !3;
    }
    out
}

pub fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    m.finalize();
    let mut buf = vec![0u8; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

/// One request at a time, each acked: the kernel applies a change during
/// `sendmsg`, so pipelining would only risk losing acks, not gain speed.
pub struct RequestSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl RequestSocket {
    pub fn open() -> Result<Self, NetlinkError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        sock.bind_auto().map_err(NetlinkError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        let _ = sock.set_ext_ack(true);
        // errors need not echo the whole request back: keeps batched acks small
        let _ = sock.set_cap_ack(true);
        nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(REQUEST_TIMEOUT.as_secs() as _, 0),
        )
        .map_err(|e| NetlinkError::Socket(e.into()))?;
        Ok(RequestSocket {
            sock,
            seq: 1,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Send one change and wait for its ack. Messages the kernel returns before
    /// the ack (NLM_F_ECHO) are passed back.
    pub fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let seq = self.next_seq();
        let bytes = encode(msg, flags | NLM_F_REQUEST | NLM_F_ACK, seq);
        self.sock.send(&bytes, 0).map_err(NetlinkError::Socket)?;
        let mut out = Vec::new();
        self.receive(seq, false, what, &mut |m| out.push(m))?;
        Ok(out)
    }

    /// Many changes, pipelined: up to `BATCH` requests per `sendmsg` (the
    /// kernel handles them in order, one ack each), so the receive buffer never
    /// holds more acks than it can. Returns one result per request, in order.
    pub fn batch(
        &mut self,
        msgs: impl IntoIterator<Item = (RouteNetlinkMessage, u16)>,
    ) -> Vec<Result<(), NetlinkError>> {
        const BATCH: usize = 256;
        let mut results = Vec::new();
        let mut it = msgs.into_iter().peekable();
        let mut out = Vec::with_capacity(BATCH * 128);
        while it.peek().is_some() {
            out.clear();
            let first = self.seq.wrapping_add(1);
            let mut n = 0u32;
            for (m, flags) in it.by_ref().take(BATCH) {
                let seq = self.next_seq();
                out.extend_from_slice(&encode(m, flags | NLM_F_REQUEST | NLM_F_ACK, seq));
                n += 1;
            }
            let mut chunk: Vec<Option<Result<(), NetlinkError>>> = (0..n).map(|_| None).collect();
            if let Err(e) = self.sock.send(&out, 0) {
                let msg = e.to_string();
                results.extend(
                    (0..n).map(|_| Err(NetlinkError::Socket(io::Error::other(msg.clone())))),
                );
                continue;
            }
            let mut pending = n;
            while pending > 0 {
                self.buf.clear();
                match self.sock.recv(&mut self.buf, 0) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let timeout = matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        );
                        for slot in chunk.iter_mut().filter(|s| s.is_none()) {
                            *slot = Some(Err(if timeout {
                                NetlinkError::Timeout {
                                    what: "batched request".into(),
                                    timeout_ms: REQUEST_TIMEOUT.as_millis() as u64,
                                }
                            } else {
                                NetlinkError::Socket(io::Error::other(e.to_string()))
                            }));
                        }
                        break;
                    }
                }
                for m in split(&self.buf).into_iter().flatten() {
                    let i = m.header.sequence_number.wrapping_sub(first) as usize;
                    if let (NetlinkPayload::Error(err), Some(slot)) = (m.payload, chunk.get_mut(i))
                        && slot.is_none()
                    {
                        *slot = Some(match err.code {
                            None => Ok(()),
                            Some(code) => Err(NetlinkError::Refused {
                                what: "batched request".into(),
                                source: io::Error::from_raw_os_error(-code.get()),
                            }),
                        });
                        pending -= 1;
                    }
                }
            }
            results.extend(
                chunk
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| Err(NetlinkError::Malformed("no ack".into())))),
            );
        }
        results
    }

    /// Dump a table.
    pub fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let mut out = Vec::new();
        self.dump_each(msg, what, &mut |m| out.push(m))?;
        Ok(out)
    }

    /// Dump a table, handing each message to `each` as it arrives, so a dump of
    /// thousands of links never sits in memory whole.
    pub fn dump_each(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &dyn Fn() -> String,
        each: &mut dyn FnMut(RouteNetlinkMessage),
    ) -> Result<(), NetlinkError> {
        let seq = self.next_seq();
        let bytes = encode(msg, NLM_F_REQUEST | NLM_F_DUMP, seq);
        self.sock.send(&bytes, 0).map_err(NetlinkError::Socket)?;
        self.receive(seq, true, what, each)
    }

    fn receive(
        &mut self,
        seq: u32,
        dump: bool,
        what: &dyn Fn() -> String,
        each: &mut dyn FnMut(RouteNetlinkMessage),
    ) -> Result<(), NetlinkError> {
        loop {
            self.buf.clear();
            match self.sock.recv(&mut self.buf, 0) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(NetlinkError::Timeout {
                        what: what(),
                        timeout_ms: REQUEST_TIMEOUT.as_millis() as u64,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(NetlinkError::Socket(e)),
            }
            for m in split(&self.buf) {
                let m = m?;
                if m.header.sequence_number != seq {
                    continue; // a late answer to an earlier, timed-out request
                }
                match m.payload {
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            None => Ok(()),
                            Some(code) => Err(NetlinkError::Refused {
                                what: what(),
                                source: io::Error::from_raw_os_error(-code.get()),
                            }),
                        };
                    }
                    NetlinkPayload::Done(_) if dump => return Ok(()),
                    NetlinkPayload::InnerMessage(inner) => each(inner),
                    _ => {}
                }
            }
        }
    }
}
