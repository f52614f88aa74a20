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

/// One malloc arena for the whole process (glibc; a no-op elsewhere). The
/// executor, the bulk worker and the /proc writers run on threads of their
/// own; each would get an arena of its own, and the memory a burst leaves
/// in it stays there. dagw's threads hardly contend for the allocator.
pub fn single_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt takes two plain integers and only sets an allocator
    // parameter; called first thing in main, before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
