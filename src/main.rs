fn main() {
    limit_malloc_arenas();
    if let Err(e) = shuiwu::cli::run() {
        eprintln!("shuiwu: {e}");
        std::process::exit(1);
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per core); a service of a few worker and
/// blocking threads does as well with two, and keeps its resident memory small and steady over years of uptime.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt is called once, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
