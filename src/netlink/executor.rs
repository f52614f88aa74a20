//! The southbound executor: carries out core actions on the kernel as a task
//! of its own, so nothing that keeps the pair safe (heartbeats, the control
//! socket, the watchdog) ever waits for a netlink reply, nor for RTNL.
//!
//! Each job is one gateway's (or member's) plan: its actions run in order,
//! each acked before the next (a later one may need what an earlier one
//! made), while many jobs are in flight at once over one `rtnetlink`
//! connection. Results come back as [`Report`]s, which the daemon turns into
//! events. Neighbour batches and table dumps go to the bulk worker
//! ([`super::bulk`]), a thread with a blocking socket that pipelines hundreds
//! of requests per `sendmsg` (docs/southbound.md has the numbers).

use std::collections::VecDeque;
use std::io;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage as R;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    LinkProtocolDownReason, MacVlanMode,
};
use rtnetlink::Handle;
use tokio::sync::mpsc;

use super::NetlinkError;
use super::bulk::{self, BulkWork};
use super::decode;
use super::messages::{addr_gen_mode_none, addr_msg, fdb_msg, link_msg};
use crate::core::action::{Action, Dumped, Outcome, Work};
use crate::core::ifname::IfName;
use crate::core::kernel::{DAGW_PROTODOWN_REASON, KernelEvent, Link, OWNER_ALIAS_PREFIX};
use crate::core::mac::Mac;

pub use super::messages::{
    neigh_probe, own_neigh_install, synced_neigh_install, synced_neigh_remove,
};
pub use super::sysctl::{GATEWAY_SYSCTLS, SVI_SYSCTLS, sysctls_in_place, write_sysctls};

/// Jobs in flight at once. Enough to keep the kernel busy without waiting
/// for round trips; few enough that acks never overrun the socket.
const MAX_IN_FLIGHT: usize = 128;

/// What came of a job. `P` says what the job was for.
pub enum Report<P> {
    Actions {
        purpose: P,
        actions: Vec<Action>,
        /// The first `outcomes.len()` actions were carried out.
        outcomes: Vec<Outcome>,
        /// Why the next one was not.
        error: Option<NetlinkError>,
    },
    Neighbours {
        refused: usize,
    },
    Dumped(Result<Box<Dumped>, NetlinkError>),
}

/// The daemon's side: hand work to the executor task.
pub struct Southbound<P> {
    jobs: mpsc::UnboundedSender<(P, Work)>,
}

impl<P: Send + 'static> Southbound<P> {
    /// Start the executor and the bulk worker; reports arrive on the
    /// returned receiver. The executor runs on a thread of its own: the
    /// kernel does a request's work inside `sendmsg`, under RTNL, which
    /// anything else on the machine may hold for seconds (a namespace torn
    /// down, another agent's burst); the event loop's thread never makes
    /// that call.
    pub fn start() -> Result<(Self, mpsc::UnboundedReceiver<Report<P>>), NetlinkError> {
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let bulk = bulk::start(reports_tx.clone())?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        std::thread::Builder::new()
            .name("dagw-executor".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .max_blocking_threads(2)
                    .build();
                let rt = match rt {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let (conn, handle, _) = match rtnetlink::new_connection() {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::spawn(conn);
                    serve(handle, jobs_rx, reports_tx, bulk).await;
                });
            })
            .map_err(NetlinkError::Socket)?;
        ready_rx
            .recv()
            .map_err(|e| NetlinkError::Socket(io::Error::other(e.to_string())))?
            .map_err(NetlinkError::Socket)?;
        Ok((Southbound { jobs: jobs_tx }, reports_rx))
    }

    /// The node counts what it handed out (`Node::in_flight`).
    pub fn submit(&mut self, purpose: P, work: Work) {
        let _ = self.jobs.send((purpose, work));
    }
}

async fn serve<P: Send + 'static>(
    handle: Handle,
    mut jobs: mpsc::UnboundedReceiver<(P, Work)>,
    reports: mpsc::UnboundedSender<Report<P>>,
    bulk: std::sync::mpsc::Sender<BulkWork<P>>,
) {
    let mut running = FuturesUnordered::new();
    // first come, first sent: a job's first request reaches the kernel
    // before any later job's
    let mut waiting: VecDeque<(P, Vec<Action>)> = VecDeque::new();
    loop {
        while running.len() < MAX_IN_FLIGHT
            && let Some((purpose, actions)) = waiting.pop_front()
        {
            running.push(run_plan(handle.clone(), purpose, actions));
        }
        if waiting.is_empty() && waiting.capacity() > MAX_IN_FLIGHT {
            // a start-up queued thousands of plans: give the queue's memory back
            waiting = VecDeque::new();
        }
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { break };
                // take every job handed out together: the plans then run
                // (and report) together, not one in, one out
                let mut next = Some(job);
                while let Some((purpose, work)) = next {
                    match work {
                        Work::Actions(actions) => waiting.push_back((purpose, actions)),
                        work => {
                            let _ = bulk.send(BulkWork { purpose, work });
                        }
                    }
                    next = jobs.try_recv().ok();
                }
            }
            Some(report) = running.next(), if !running.is_empty() => {
                // the reports ready now go out together, so the event loop
                // wakes once for them, not once each (an audit's read-only
                // plans finish as they are polled, 4094 of them a minute)
                let mut ready = vec![report];
                while let Some(Some(report)) = running.next().now_or_never() {
                    ready.push(report);
                }
                for report in ready {
                    let _ = reports.send(report);
                }
            }
        }
    }
}

async fn run_plan<P>(mut handle: Handle, purpose: P, actions: Vec<Action>) -> Report<P> {
    let mut outcomes = Vec::with_capacity(actions.len());
    let mut error = None;
    for a in &actions {
        match apply(&mut handle, a).await {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    Report::Actions {
        purpose,
        actions,
        outcomes,
        error,
    }
}

fn is(e: &NetlinkError, errno: i32) -> bool {
    e.errno() == Some(errno)
}

/// Send one request and wait for its ack; messages the kernel returns
/// before the ack (an echo, a get's answer) are passed back.
async fn request(
    handle: &mut Handle,
    msg: R,
    flags: u16,
    what: impl FnOnce() -> String,
) -> Result<Vec<R>, NetlinkError> {
    let _shared = TURNS.read().await;
    let mut nl = NetlinkMessage::from(msg);
    nl.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let mut answers = handle
        .request(nl)
        .map_err(|e| NetlinkError::Socket(io::Error::other(e.to_string())))?;
    let mut out = Vec::new();
    while let Some(m) = answers.next().await {
        match m.payload {
            NetlinkPayload::Error(e) => {
                if let Some(code) = e.code {
                    return Err(NetlinkError::Refused {
                        what: what(),
                        source: io::Error::from_raw_os_error(-code.get()),
                    });
                }
            }
            NetlinkPayload::InnerMessage(r) => out.push(r),
            _ => {}
        }
    }
    Ok(out)
}

/// A request whose listed errnos mean "already so" (adding what exists,
/// removing what is gone).
async fn idempotent(
    handle: &mut Handle,
    msg: R,
    flags: u16,
    already: &[i32],
    what: impl FnOnce() -> String,
) -> Result<(), NetlinkError> {
    match request(handle, msg, flags, what).await {
        Err(e) if already.iter().any(|&n| is(&e, n)) => Ok(()),
        r => r.map(drop),
    }
}

async fn apply(handle: &mut Handle, action: &Action) -> Result<Outcome, NetlinkError> {
    let what = || format!("{action:?}");
    let mut outcome = Outcome::default();
    match action {
        Action::CreateDevice {
            gateway,
            name,
            parent,
            mac,
            held,
        } => {
            outcome.link = Some(create_device(handle, gateway, name, *parent, *mac, *held).await?);
        }
        Action::Sysctls { device } => outcome.sysctls_changed = sysctls(device.clone()).await?,
        Action::Rename { index, name } => {
            // the kernel renames only a device that is down
            let was_up = get_link(handle, link_msg(*index))
                .await?
                .is_some_and(|l| l.admin_up);
            if was_up {
                set_admin(handle, *index, false).await?;
            }
            let mut m = link_msg(*index);
            m.attributes.push(LinkAttribute::IfName(name.clone()));
            let r = request(handle, R::SetLink(m), 0, what).await;
            if was_up {
                set_admin(handle, *index, true).await?;
            }
            r?;
        }
        Action::SetMac { index, mac } => {
            let mut m = link_msg(*index);
            m.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
            request(handle, R::SetLink(m), 0, what).await?;
        }
        Action::SetAddrGenModeNone { index } => {
            let mut m = link_msg(*index);
            m.attributes.push(addr_gen_mode_none());
            request(handle, R::SetLink(m), 0, what).await?;
        }
        Action::Protodown {
            index,
            ours,
            protodown,
        } => {
            let mut m = link_msg(*index);
            m.attributes.push(LinkAttribute::ProtoDownReason(vec![
                LinkProtocolDownReason::Mask(DAGW_PROTODOWN_REASON),
                LinkProtocolDownReason::Value(if *ours { DAGW_PROTODOWN_REASON } else { 0 }),
            ]));
            m.attributes
                .push(LinkAttribute::ProtoDown(u8::from(*protodown)));
            request(handle, R::SetLink(m), 0, what).await?;
        }
        Action::AdminUp { index, up } => set_admin(handle, *index, *up).await?,
        Action::AddAddr { index, addr, nodad } => {
            let m = R::NewAddress(addr_msg(*index, *addr, *nodad));
            idempotent(handle, m, NLM_F_CREATE | NLM_F_EXCL, &[libc::EEXIST], what).await?
        }
        Action::DelAddr { index, addr } => {
            let m = R::DelAddress(addr_msg(*index, *addr, false));
            let gone = [libc::EADDRNOTAVAIL, libc::ENOENT, libc::ENODEV];
            idempotent(handle, m, 0, &gone, what).await?
        }
        Action::AddFdbLocal { bridge, mac } => {
            let m = R::NewNeighbour(fdb_msg(*bridge, *mac, None));
            idempotent(handle, m, NLM_F_CREATE | NLM_F_EXCL, &[libc::EEXIST], what).await?
        }
        Action::DelFdbLocal { bridge, mac } => {
            let m = R::DelNeighbour(fdb_msg(*bridge, *mac, None));
            idempotent(handle, m, 0, &[libc::ENOENT, libc::ENODEV], what).await?
        }
        Action::AppendFlood { vxlan, dst } => {
            let m = R::NewNeighbour(fdb_msg(*vxlan, Mac::default(), Some(*dst)));
            let flags = NLM_F_CREATE | NLM_F_APPEND;
            idempotent(handle, m, flags, &[libc::EEXIST], what).await?
        }
        Action::DelFlood { vxlan, dst } => {
            let m = R::DelNeighbour(fdb_msg(*vxlan, Mac::default(), Some(*dst)));
            idempotent(handle, m, 0, &[libc::ENOENT, libc::ENODEV], what).await?
        }
        Action::DeleteLink { index } => {
            let m = R::DelLink(link_msg(*index));
            idempotent(handle, m, 0, &[libc::ENODEV], what).await?
        }
    }
    Ok(outcome)
}

/// The executor's requests and its /proc writes take turns. The IPv6
/// sysctls that need RTNL take it with `rtnl_trylock` and retry the syscall
/// while it is held: beside 128 requests in flight, a writer would spin on a
/// core for as long as they last. A write waits for the requests in flight
/// (new ones wait behind it), then runs alone.
static TURNS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// /proc writes on a blocking thread, never on the loop.
async fn sysctls(device: String) -> Result<u32, NetlinkError> {
    if sysctls_in_place(&device) {
        return Ok(0);
    }
    let _alone = TURNS.write().await;
    tokio::task::spawn_blocking(move || write_sysctls(&device))
        .await
        .map_err(|e| NetlinkError::Socket(io::Error::other(e.to_string())))?
}

async fn set_admin(handle: &mut Handle, index: u32, up: bool) -> Result<(), NetlinkError> {
    let mut m = link_msg(index);
    m.header.change_mask = LinkFlags::Up;
    if up {
        m.header.flags = LinkFlags::Up;
    }
    request(handle, R::SetLink(m), 0, || {
        format!("set link {index} {}", if up { "up" } else { "down" })
    })
    .await?;
    Ok(())
}

async fn get_link(handle: &mut Handle, m: LinkMessage) -> Result<Option<Link>, NetlinkError> {
    match request(handle, R::GetLink(m), 0, || "get link".into()).await {
        Err(e) if is(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
        Ok(msgs) => Ok(first_link(&msgs)),
    }
}

fn first_link(msgs: &[R]) -> Option<Link> {
    msgs.iter().find_map(|m| match decode::decode(m) {
        Some(KernelEvent::Link(l)) => Some(l),
        _ => None,
    })
}

/// Create the macvlan admin-down (the kernel echoes it back with its
/// index), set its sysctls, then in one message: ownership alias,
/// addr_gen_mode none and, when `held`, protodown with dagw's reason; then
/// admin up.
async fn create_device(
    handle: &mut Handle,
    gateway: &str,
    name: &str,
    parent: u32,
    mac: Mac,
    held: bool,
) -> Result<Link, NetlinkError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m.attributes.push(LinkAttribute::Link(parent));
    m.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::MacVlan),
        LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
            MacVlanMode::Private,
        )])),
    ]));
    let echo = request(
        handle,
        R::NewLink(m),
        NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
        || format!("create macvlan {name} for gateway {gateway}"),
    )
    .await?;
    let link = match first_link(&echo) {
        Some(l) => l,
        // a kernel without NLM_F_ECHO for new links: ask
        None => {
            let mut q = LinkMessage::default();
            q.attributes.push(LinkAttribute::IfName(name.to_string()));
            get_link(handle, q)
                .await?
                .ok_or_else(|| NetlinkError::Refused {
                    what: format!("create macvlan {name}"),
                    source: io::Error::from_raw_os_error(libc::ENODEV),
                })?
        }
    };
    let mut s = link_msg(link.index);
    s.attributes.push(LinkAttribute::IfAlias(format!(
        "{OWNER_ALIAS_PREFIX}{gateway}"
    )));
    s.attributes.push(addr_gen_mode_none());
    if held {
        s.attributes.push(LinkAttribute::ProtoDownReason(vec![
            LinkProtocolDownReason::Mask(DAGW_PROTODOWN_REASON),
            LinkProtocolDownReason::Value(DAGW_PROTODOWN_REASON),
        ]));
        s.attributes.push(LinkAttribute::ProtoDown(1));
    }
    // before it is up: accept_dad 0 and arp_ignore from the first packet
    sysctls(name.to_string()).await?;
    request(handle, R::SetLink(s), 0, || format!("mark macvlan {name}")).await?;
    // Up in a message of its own: in one with addr_gen_mode, the kernel
    // brings the device up first and makes its own link-local. Up even when
    // held (protodown keeps it from serving): the kernel announces changes
    // of a device that is down to nobody, so only bringing it up tells the
    // event stream of its mark; without it, the stream's last word on the
    // device would be its unmarked birth.
    set_admin(handle, link.index, true).await?;
    let mut made = Link {
        owner_gateway: IfName::new(gateway),
        addr_gen_mode: Some(1),
        admin_up: true,
        ..link
    };
    if held {
        made.protodown = true;
        made.protodown_reason |= DAGW_PROTODOWN_REASON;
    }
    Ok(made)
}
