//! The `callflowd` binary: see `callflowd --help`.

/// Parsing ESL events allocates hundreds of small strings per event; mimalloc's thread-local
/// free lists make that about a third cheaper than glibc malloc (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    callflowd::cli::run()
}
