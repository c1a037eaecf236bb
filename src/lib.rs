//! callflowd: runs Kazoo-style JSON callflows on FreeSWITCH through the outbound Event Socket.
//!
//! Two one-way data paths share only the in-memory routing index:
//! `api` -> `callflow` (validate) -> `store` (sled) -> index, and
//! FreeSWITCH `socket` app -> `engine` -> index lookup -> `modules` -> ESL commands.

pub mod api;
pub mod callflow;
pub mod cli;
pub mod config;
pub mod engine;
pub mod fakeswitch;
pub mod loadgen;
pub mod modules;
pub mod store;
pub mod telemetry;
