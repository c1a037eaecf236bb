//! Command-line interface (clap).
