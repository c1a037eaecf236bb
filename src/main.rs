//! The `callflowd` binary: see `callflowd --help`.

fn main() -> std::process::ExitCode {
    callflowd::cli::run()
}
