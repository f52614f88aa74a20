//! What dagw keeps in `state_dir` across its restarts: the boot marker (to
//! tell the first start after boot), the members' records and the drain.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::core::member::MemberRecord;
use crate::core::node::MemberSave;

const BOOT_MARKER: &str = "booted";
const MEMBERS_FILE: &str = "members.json";
/// Present while `dagw drain` is in force.
const DRAINED_FILE: &str = "drained";

pub struct StateDir(pub PathBuf);

impl StateDir {
    pub fn ensure(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.0)
    }

    pub fn boot_marker(&self) -> PathBuf {
        self.0.join(BOOT_MARKER)
    }

    /// The members' records as saved, with what was left of their holds.
    pub fn load_members(&self) -> HashMap<String, (MemberRecord, Option<Duration>)> {
        let saved: HashMap<String, (MemberRecord, Option<u64>)> =
            std::fs::read(self.0.join(MEMBERS_FILE))
                .ok()
                .filter(|b| b.len() < 1 << 20)
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
        let now = unix_ms();
        saved
            .into_iter()
            .map(|(name, (rec, until))| {
                let left = until.map(|ms| Duration::from_millis(ms.saturating_sub(now)));
                (name, (rec, left))
            })
            .collect()
    }

    /// Written whole or not at all (a rename).
    pub fn save_members(&self, records: &[MemberSave]) {
        let now = unix_ms();
        let recs: HashMap<&str, (MemberRecord, Option<u64>)> = records
            .iter()
            .map(|(name, rec, left)| {
                let until = left.map(|d| now + d.as_millis() as u64);
                (name.as_str(), (*rec, until))
            })
            .collect();
        let path = self.0.join(MEMBERS_FILE);
        let tmp = path.with_extension("tmp");
        if let Ok(bytes) = serde_json::to_vec(&recs)
            && std::fs::write(&tmp, bytes).is_ok()
        {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    pub fn drained(&self) -> bool {
        self.0.join(DRAINED_FILE).exists()
    }

    /// Record the drain (or its end) before it takes effect.
    pub fn set_drained(&self, on: bool) -> Result<(), String> {
        let marker = self.0.join(DRAINED_FILE);
        let io = if on {
            std::fs::write(&marker, b"drained\n")
        } else {
            match std::fs::remove_file(&marker) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        };
        io.map_err(|e| format!("cannot record the drain in {}: {e}", marker.display()))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// The kernel's boot id; `DAGW_BOOT_ID_FILE` names another file to read
/// (tests simulate a reboot with it).
pub fn read_boot_id() -> Option<String> {
    let path = std::env::var_os("DAGW_BOOT_ID_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/sys/kernel/random/boot_id"));
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 64)
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
