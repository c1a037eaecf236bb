//! callflowd: runs Kazoo-style JSON callflows on FreeSWITCH through the outbound Event Socket.
//!
//! Two one-way data paths share only the in-memory routing index:
//! `api` -> `documents` (validate via `callflow`) -> `store` (sled) -> index, and
//! FreeSWITCH `socket` app -> `engine` -> index lookup -> `modules` -> ESL commands.
//! [`service::start`] runs both (HTTP API + ESL listener) over one store.

pub mod api;
pub mod auth;
pub mod callflow;
pub mod cli;
pub mod config;
pub mod documents;
pub mod engine;
pub mod fakeswitch;
pub mod fuzzing;
pub mod loadgen;
pub mod modules;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod util;
