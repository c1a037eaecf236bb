//! Settings: defaults < TOML file < `CALLFLOWD_*` env < flags.
