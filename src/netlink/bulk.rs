//! The bulk worker: a thread with a blocking request socket for the work
//! that comes in thousands — neighbour batches, pipelined hundreds per
//! `sendmsg` (docs/southbound.md compares this with rtnetlink's requests) —
//! and full table dumps. It runs in order, off the event loop; its reports
//! join the executor's.

use std::sync::mpsc as std_mpsc;

use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as R;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::neighbour::NeighbourMessage;
use tokio::sync::mpsc;

use super::NetlinkError;
use super::decode;
use super::executor::Report;
use super::messages::{neigh_probe, own_neigh_install, synced_neigh_install, synced_neigh_remove};
use super::socket::RequestSocket;
use crate::core::action::{Dumped, Work};
use crate::core::kernel::{KernelEvent, KernelView, NeighKey};
use crate::core::neigh::NeighAction;

pub struct BulkWork<P> {
    pub purpose: P,
    pub work: Work,
}

pub fn start<P: Send + 'static>(
    reports: mpsc::UnboundedSender<Report<P>>,
) -> Result<std_mpsc::Sender<BulkWork<P>>, NetlinkError> {
    let mut sock = RequestSocket::open()?;
    let (tx, rx) = std_mpsc::channel::<BulkWork<P>>();
    std::thread::Builder::new()
        .name("dagw-bulk".into())
        .spawn(move || {
            for BulkWork { purpose, work } in rx {
                let report = match work {
                    Work::Neighbours(msgs) => Report::Neighbours {
                        refused: neighbours(&mut sock, msgs),
                    },
                    Work::Dump { clock_s } => {
                        Report::Dumped(dump(&mut sock, clock_s).map(Box::new))
                    }
                    Work::Actions(actions) => Report::Actions {
                        purpose,
                        actions,
                        outcomes: Vec::new(),
                        error: Some(NetlinkError::Malformed(
                            "plan sent to the bulk worker".into(),
                        )),
                    },
                };
                if reports.send(report).is_err() {
                    break;
                }
            }
        })
        .map_err(NetlinkError::Socket)?;
    Ok(tx)
}

/// Returns how many changes the kernel refused (ENOENT on a removal is done).
pub fn neighbours(sock: &mut RequestSocket, changes: Vec<(NeighKey, NeighAction)>) -> usize {
    let msgs = changes.into_iter().map(|(k, a)| match a {
        NeighAction::Pin(mac) => synced_neigh_install(k.ifindex, k.ip, mac),
        NeighAction::Own(mac) => own_neigh_install(k.ifindex, k.ip, mac),
        NeighAction::Unpin => synced_neigh_remove(k.ifindex, k.ip),
        NeighAction::Probe => neigh_probe(k.ifindex, k.ip),
    });
    sock.batch(msgs)
        .into_iter()
        .filter(|r| matches!(r, Err(e) if e.errno() != Some(libc::ENOENT)))
        .count()
}

/// Full dump of what dagw mirrors (links, addresses, neighbours and the
/// bridges' FDB), folded into a fresh view as it arrives.
pub fn dump(sock: &mut RequestSocket, clock_s: u32) -> Result<Dumped, NetlinkError> {
    let mut view = KernelView::default();
    view.clock_s = clock_s;
    let mut learned = Vec::new();
    let mut fold = |m: R| {
        if let Some(ev) = decode::decode(&m) {
            if matches!(ev, KernelEvent::MacLearned(_)) {
                learned.push(ev.clone());
            }
            view.apply(ev);
        }
    };
    sock.dump_each(
        R::GetLink(LinkMessage::default()),
        &|| "dump links".into(),
        &mut fold,
    )?;
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut m = AddressMessage::default();
        m.header.family = family;
        sock.dump_each(R::GetAddress(m), &|| "dump addresses".into(), &mut fold)?;
    }
    for family in [
        AddressFamily::Inet,
        AddressFamily::Inet6,
        AddressFamily::Bridge,
    ] {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        sock.dump_each(R::GetNeighbour(m), &|| "dump neighbours".into(), &mut fold)?;
    }
    Ok(Dumped { view, learned })
}
