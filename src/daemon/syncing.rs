//! The daemon's side of the ARP/ND sync channel (issue 5).

use super::Daemon;

impl Daemon {
    /// The peer's bulk sync of the current session has been received whole.
    pub(super) fn sync_bulk_complete(&self) -> bool {
        false
    }
}
