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

/// How often [`spawn_trimmer`] hands free heap memory back.
pub const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Returns the heap's free memory to the operating system every
/// [`TRIM_INTERVAL`], for as long as the process runs.
///
/// glibc keeps freed small allocations in its arenas for reuse and gives
/// them back only from the top of the main heap, so after a burst (many
/// requests in flight, a consumer backlog) a process stays as large as its
/// peak although the memory is free. `malloc_trim` releases free pages
/// anywhere in every arena; with nothing to release it costs microseconds.
pub fn spawn_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // SAFETY: malloc_trim only releases free memory; thread-safe in glibc.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}
