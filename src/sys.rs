//! The one place dagw calls the C library directly.
//!
//! Why unsafe here: parsing a large configuration (4094 gateways) builds a
//! document many times the file's size. glibc keeps the freed memory in the
//! process, so a long-running daemon would carry ~25 MB of garbage for its
//! whole life. `malloc_trim(0)` hands it back; there is no safe wrapper for it.

/// Return freed heap memory to the system (glibc; a no-op elsewhere).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes a plain integer, touches only the allocator's
    // own free lists, and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
