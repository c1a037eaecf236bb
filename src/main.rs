//! The `callflowd` binary: see `callflowd --help`.

/// Parsing ESL events allocates hundreds of small strings per event; mimalloc's thread-local
/// free lists make that about a third cheaper than glibc malloc (see BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    #[cfg(all(feature = "mimalloc", target_os = "linux"))]
    disable_transparent_huge_pages();
    callflowd::cli::run()
}

/// Keeps RSS proportional to the live heap. With transparent huge pages set to `always` (common
/// on Linux distributions), mimalloc's arenas are backed by 2 MiB pages, and a huge page stays
/// resident while any small block in it is live: under a churning heap RSS climbs in 2 MiB steps
/// while the live heap is flat (30-minute soak: BENCHMARKS.md "Soak"). mimalloc does the same
/// itself when started with `MIMALLOC_ALLOW_THP=0`; an operator who sets `MIMALLOC_ALLOW_THP`
/// explicitly keeps their choice.
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
fn disable_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a flag of this
    // process; it cannot touch memory. A failure (an old kernel) leaves THP as it was.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}
