//! The daemon: I/O glue around the node (`core::node`), which holds every
//! rule. One loop selects over kernel events, the executor's reports,
//! timers, heartbeats, the sync channel, control requests and signals; each
//! becomes an event for the node, and the node's effects are carried out
//! here. Nothing on this loop waits for the kernel: plans go to the
//! executor task (`netlink::executor`), results come back as reports.
//!
//! Start-up: subscribe, dump, hand the node the kernel's state, let the
//! first reconcile settle, write the boot marker, then tell systemd READY.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

pub mod heartbeat;
mod northbound;
mod state;
mod sync_io;

use crate::config::Config;
use crate::control::{self, Request};
use crate::core::action::{Dumped, KernelError};
use crate::core::member;
use crate::core::node::{Effect, Event, KernelReport, Node, Purpose, Start};
use crate::netlink::executor::{Report, Southbound};
use crate::netlink::observer::{Observed, Observer};
use crate::netlink::socket::RequestSocket;
use crate::netlink::{NetlinkError, bulk};
use crate::telemetry::{Kind, Notice, Telemetry, ids};
use heartbeat::{HeartbeatIo, PeerSetupError, Received};
use state::StateDir;
use sync_io::{SyncEvent, SyncIo};

/// Sysctls have no change events: audit them this often.
const AUDIT_INTERVAL: Duration = Duration::from_secs(60);
/// At a stop, how long plans in flight may take to report.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// A turn of the event loop longer than this is logged.
const SLOW_TURN: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Netlink(#[from] NetlinkError),
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {}: {source}", path.display())]
    Control {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
    #[error("{0}")]
    Peer(#[from] PeerSetupError),
    #[error("metrics endpoint {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub struct Daemon {
    node: Node,
    cfg_path: PathBuf,
    state: StateDir,
    south: Southbound<Purpose>,
    reports: mpsc::UnboundedReceiver<Report<Purpose>>,
    telemetry: Telemetry,
    heartbeat: Option<HeartbeatIo>,
    /// Answer a peer that just appeared at once rather than at the next tick.
    heartbeat_now: bool,
    sync: Option<SyncIo>,
    sync_rx: Option<mpsc::Receiver<SyncEvent>>,
    /// Reports of kernel work since memory was last handed back: a burst
    /// (a bulk sync of 100k entries, a big reload) hands it back as it ends,
    /// not at the next audit.
    reports_since_settle: usize,
}

/// Reports that make a burst worth a `malloc_trim` when it ends.
const BURST_REPORTS: usize = 64;

fn kernel_error(e: NetlinkError) -> KernelError {
    KernelError {
        errno: e.errno(),
        message: e.to_string(),
    }
}

impl Daemon {
    pub fn new(cfg: Config, cfg_path: PathBuf, version: String) -> Result<Self, DaemonError> {
        let (south, reports) = Southbound::start()?;
        let heartbeat = match &cfg.peer {
            Some(p) => Some(HeartbeatIo::start(p, &cfg.node.name)?),
            None => None,
        };
        let state = StateDir(cfg.node.state_dir.clone());
        Ok(Daemon {
            node: Node::new(cfg, version, Instant::now()),
            cfg_path,
            state,
            south,
            reports,
            telemetry: Telemetry::new(),
            heartbeat,
            heartbeat_now: false,
            sync: None,
            sync_rx: None,
            reports_since_settle: 0,
        })
    }

    /// Feed the node one event and carry its effects out.
    fn feed(&mut self, event: Event, now: Instant) {
        let what = event.kind();
        let effects = self.node.handle(event, now);
        let n = effects.len();
        self.carry_out(effects);
        slow_turn(what, n, now);
    }

    fn carry_out(&mut self, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Kernel(purpose, work) => self.south.submit(purpose, work),
                Effect::Notice(n) => self.telemetry.emit(n),
                Effect::SaveMembers(records) => self.state.save_members(&records),
                Effect::HeartbeatNow => self.heartbeat_now = true,
                Effect::HeartbeatRestart => {
                    if let Some(h) = self.heartbeat.as_mut() {
                        h.restart();
                    }
                }
                Effect::PeerStart(p) => {
                    self.heartbeat = None;
                    match HeartbeatIo::start(&p, &self.node.config().node.name) {
                        Ok(h) => self.heartbeat = Some(h),
                        Err(e) => self.telemetry.emit(Notice::new(
                            Kind::Alert,
                            ids::APPLY_FAILED,
                            "peer",
                            e.to_string(),
                        )),
                    }
                }
                Effect::PeerStop => self.heartbeat = None,
                Effect::SyncStart => self.start_sync(),
                Effect::SyncStop => {
                    self.sync = None;
                    self.sync_rx = None;
                }
                Effect::SyncRekey => {
                    if let (Some(s), Some(h)) = (self.sync.as_mut(), self.heartbeat.as_ref()) {
                        s.rekey(h.link.keys.clone());
                    }
                }
                Effect::SyncSend(msg) => {
                    if let Some(s) = self.sync.as_mut()
                        && !s.send(msg)
                    {
                        let more = self.node.handle(Event::SyncReset, Instant::now());
                        self.carry_out(more);
                    }
                }
            }
        }
    }

    fn start_sync(&mut self) {
        self.sync = None;
        self.sync_rx = None;
        let (Some(h), Some(p)) = (&self.heartbeat, self.node.config().peer.as_ref()) else {
            return;
        };
        let (io, rx) = SyncIo::start(
            p.local,
            std::net::SocketAddr::new(p.address, p.port),
            self.node.config().node.name.clone(),
            h.link.keys.clone(),
        );
        self.sync = Some(io);
        self.sync_rx = Some(rx);
    }

    fn on_report(&mut self, report: Report<Purpose>, now: Instant) {
        let event = match report {
            Report::Actions {
                purpose,
                actions,
                outcomes,
                error,
            } => Event::Report(KernelReport {
                purpose,
                actions,
                outcomes,
                error: error.map(kernel_error),
            }),
            Report::Neighbours { refused } => Event::Neighbours { refused },
            Report::Dumped(d) => Event::Dumped(d.map_err(kernel_error)),
        };
        self.feed(event, now);
        self.reports_since_settle += 1;
        if self.reports_since_settle >= BURST_REPORTS
            && self.node.in_flight() == 0
            && !self.node.has_more()
        {
            self.settle_memory();
        }
    }

    fn on_sync_event(&mut self, ev: SyncEvent, now: Instant) {
        let event = match ev {
            SyncEvent::Session(tx) => {
                if let Some(s) = self.sync.as_mut() {
                    s.session(tx);
                }
                Event::SyncSession
            }
            SyncEvent::Msg(m) => Event::SyncMessage(m),
        };
        self.feed(event, now);
    }

    fn on_datagram(&mut self, pkt: &[u8], from: std::net::SocketAddr, now: Instant) {
        let Some(h) = self.heartbeat.as_mut() else {
            return;
        };
        match h.on_datagram(pkt, from, now) {
            Received::Heartbeat(event) => self.feed(event, now),
            Received::Dropped { notice, answer_now } => {
                self.heartbeat_now |= answer_now;
                if let Some(n) = notice {
                    self.telemetry.emit(n);
                }
            }
        }
    }

    async fn send_heartbeat(&mut self) {
        let began = Instant::now();
        let pages = self.node.heartbeat_round();
        let n = pages.len();
        if let Some(h) = self.heartbeat.as_mut() {
            h.send(pages).await;
        }
        slow_turn("a heartbeat round", n, began);
    }

    /// A reload: read and validate the file, re-read the peer's keys, hand
    /// the node the new configuration. The kernel work it plans goes on
    /// after the answer.
    fn reload(&mut self, now: Instant) -> Result<Vec<String>, Vec<String>> {
        let telemetry = &self.telemetry;
        let loaded = northbound::load_config(&self.cfg_path, self.node.config(), &mut |n| {
            telemetry.emit(n)
        });
        let (new, warnings) = loaded?;
        let same_peer = match (&self.heartbeat, &new.peer) {
            (Some(h), Some(p)) => {
                h.cfg.local == p.local && h.cfg.address == p.address && h.cfg.port == p.port
            }
            _ => false,
        };
        let mut keys_changed = false;
        if same_peer && let (Some(h), Some(p)) = (self.heartbeat.as_mut(), new.peer.as_ref()) {
            keys_changed = h.reread_keys(p).is_some();
        }
        self.feed(
            Event::Config {
                config: Box::new(new),
                keys_changed,
            },
            now,
        );
        let file = self.cfg_path.display().to_string();
        self.telemetry.emit(Notice::new(
            Kind::State,
            ids::CONFIG_RELOADED,
            "config",
            format!("configuration {file} applied"),
        ));
        Ok(warnings.iter().map(|d| d.render(&file)).collect())
    }

    fn status(&self, now: Instant) -> crate::status::Status {
        let mut st = self.node.status(now);
        northbound::complete_status(&mut st, self.heartbeat.as_ref());
        slow_turn("status", 0, now);
        st
    }

    fn on_request(&mut self, req: Request, now: Instant) -> control::Reply {
        match req {
            Request::Status => control::Reply::Status(Box::new(self.status(now))),
            Request::Metrics => control::Reply::Metrics {
                text: northbound::metrics(&self.status(now), self.heartbeat.as_ref()),
            },
            Request::Reload => match self.reload(now) {
                Ok(warnings) => control::Reply::Reloaded { warnings },
                Err(errors) => control::Reply::Refused { errors },
            },
            Request::Drain | Request::Resume => {
                let on = matches!(req, Request::Drain);
                match self.state.set_drained(on) {
                    Ok(()) => {
                        self.feed(Event::Drain(on), now);
                        control::Reply::Drained { drained: on }
                    }
                    Err(error) => control::Reply::Error { error },
                }
            }
        }
    }

    /// Hand memory freed by bursts (start-up, a bulk sync, a reload) back to
    /// the system.
    fn settle_memory(&mut self) {
        self.reports_since_settle = 0;
        self.node.compact();
        crate::sys::release_free_memory();
    }

    /// Start-up: run until every plan of the first reconcile reported and
    /// the kernel's echoes of them were read (nothing left to plan).
    async fn settle(&mut self, observer: &mut Observer) -> Result<(), DaemonError> {
        while !self.node.settled() {
            tokio::select! {
                _ = std::future::ready(()), if self.node.has_more() => self.feed(Event::Continue, Instant::now()),
                Some(r) = self.reports.recv() => self.on_report(r, Instant::now()),
                obs = observer.next() => {
                    let event = match obs? {
                        Observed::Events { events, drained } => Event::Kernel { events, drained },
                        Observed::Overrun => Event::Overrun,
                    };
                    self.feed(event, Instant::now());
                }
            }
        }
        Ok(())
    }

    /// Stopping: no new plans; what the kernel is doing now is seen through
    /// (its reports keep the member records right), for a bounded time.
    async fn finish_in_flight(&mut self) {
        self.feed(Event::Stop, Instant::now());
        let give_up = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.node.in_flight() > 0 {
            tokio::select! {
                Some(r) = self.reports.recv() => self.on_report(r, Instant::now()),
                _ = tokio::time::sleep_until(give_up) => break,
            }
        }
    }

    /// Run until SIGTERM / SIGINT.
    pub async fn run(mut self, socket_path: PathBuf) -> Result<(), DaemonError> {
        use tokio::signal::unix::{SignalKind, signal};
        self.state
            .ensure()
            .map_err(|source| DaemonError::StateDir {
                path: self.state.path().to_path_buf(),
                source,
            })?;
        let mut observer = Observer::open()?;
        let now = Instant::now();
        let Dumped { view, learned } =
            bulk::dump(&mut RequestSocket::open()?, self.node.clock_s(now))?;
        let marker = self.state.boot_marker();
        let recorded = std::fs::read_to_string(&marker).ok();
        let boot_id = state::read_boot_id();
        let first_start = member::first_start_after_boot(recorded.as_deref(), boot_id.as_deref());
        let start = Start {
            view,
            learned,
            first_start,
            drained: self.state.drained(),
            members: self.state.load_members(),
        };
        let effects = self.node.start(start, now);
        self.carry_out(effects);
        self.settle(&mut observer).await?;
        let record = boot_id.unwrap_or_else(|| state::unix_ms().to_string());
        std::fs::write(&marker, format!("{}\n", record.trim())).map_err(|source| {
            DaemonError::StateDir {
                path: marker.clone(),
                source,
            }
        })?;

        let (req_tx, mut req_rx) = mpsc::channel::<(Request, oneshot::Sender<control::Reply>)>(64);
        let listener = control::bind(&socket_path).map_err(|source| DaemonError::Control {
            path: socket_path.clone(),
            source,
        })?;
        let monitor_feed = self.telemetry.sender();
        // one signal every task watches: set when the daemon stops
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        if let Some(m) = &self.node.config().metrics {
            let l = crate::telemetry::metrics::bind(m.listen)
                .await
                .map_err(|source| DaemonError::Metrics {
                    addr: m.listen,
                    source,
                })?;
            tokio::spawn(crate::telemetry::metrics::serve(
                l,
                req_tx.clone(),
                shutdown.clone(),
            ));
        }
        tokio::spawn(control::serve(listener, req_tx, monitor_feed, shutdown));

        let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
        let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
        let watchdog = watchdog_period();
        let mut watchdog_tick =
            tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut audit_tick = tokio::time::interval(AUDIT_INTERVAL);
        audit_tick.tick().await;
        let mut hb_period = self.node.heartbeat_period();
        let mut hb_tick = tokio::time::interval(hb_period);
        hb_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // one byte more than the largest valid packet: an oversized one is seen as such
        let mut rx_buf = [0u8; crate::peer::codec::MAX_PACKET + 1];
        watchdog_tick.tick().await;
        self.settle_memory();
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        self.telemetry.emit(
            Notice::new(
                Kind::State,
                ids::STARTED,
                self.node.config().node.name.clone(),
                format!(
                    "dagw {} serving {} gateways",
                    self.node.version(),
                    self.node.gateway_count()
                ),
            )
            .with("first_start", first_start),
        );

        loop {
            if std::mem::take(&mut self.heartbeat_now) {
                hb_tick.reset_immediately();
            }
            if self.node.heartbeat_period() != hb_period {
                hb_period = self.node.heartbeat_period();
                hb_tick = tokio::time::interval(hb_period);
                hb_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            let hb_sock = self.heartbeat.as_ref().map(|h| h.socket.clone());
            let deadline = self.node.next_deadline();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                obs = observer.next() => {
                    let event = match obs? {
                        Observed::Events { events, drained } => Event::Kernel { events, drained },
                        Observed::Overrun => Event::Overrun,
                    };
                    self.feed(event, Instant::now());
                }
                Some(r) = self.reports.recv() => self.on_report(r, Instant::now()),
                _ = std::future::ready(()), if self.node.has_more() => self.feed(Event::Continue, Instant::now()),
                _ = sleep => self.feed(Event::Timer, Instant::now()),
                _ = hb_tick.tick(), if hb_sock.is_some() => self.send_heartbeat().await,
                r = heartbeat::recv(hb_sock.as_deref(), &mut rx_buf) => {
                    if let Ok((n, from)) = r {
                        self.on_datagram(&rx_buf[..n], from, Instant::now());
                    }
                }
                Some((req, reply)) = req_rx.recv() => {
                    let r = self.on_request(req, Instant::now());
                    let _ = reply.send(r);
                }
                Some(ev) = recv_sync(&mut self.sync_rx) => self.on_sync_event(ev, Instant::now()),
                _ = hup.recv() => { let _ = self.reload(Instant::now()); }
                _ = audit_tick.tick() => {
                    self.settle_memory();
                    self.feed(Event::Audit, Instant::now());
                }
                _ = watchdog_tick.tick(), if watchdog.is_some() => { let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]); }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        let _ = stop.send(true);
        if let (Some(h), Some(bye)) = (self.heartbeat.as_mut(), self.node.goodbye()) {
            h.goodbye(bye).await;
        }
        self.finish_in_flight().await;
        let _ = std::fs::remove_file(&socket_path);
        Ok(())
    }
}

/// A turn of the loop that kept everything else waiting is worth a line:
/// heartbeats and the control socket share this loop.
fn slow_turn(what: &str, effects: usize, began: Instant) {
    let took = began.elapsed();
    if took >= SLOW_TURN {
        tracing::warn!(
            "slow turn of the event loop: {what} took {} ms ({effects} effects)",
            took.as_millis()
        );
    }
}

async fn recv_sync(rx: &mut Option<mpsc::Receiver<SyncEvent>>) -> Option<SyncEvent> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Half the systemd watchdog period, when systemd asked for pings.
fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|d| !d.is_zero())
        .map(|d| d / 2)
}
