//! Keeping resident memory close to what is in use.

/// Asks glibc to serve allocations of 1 MiB and more with `mmap`, so they go
/// back to the operating system when freed.
///
/// By default glibc raises that threshold after the first large free (up to
/// 32 MiB), after which large buffers — password hashing, big responses —
/// come from heap arenas that are never returned: a burst leaves the process
/// hundreds of megabytes larger for good. Call once, early: it applies to
/// allocations made after it.
pub fn return_large_allocations_to_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning and is thread-safe in glibc.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
