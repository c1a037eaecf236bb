//! Runs the real engine against the fake switch: the core of `callflowd simulate`, the module
//! tests and the load generator's self-check.
//!
//! One simulated call = an ephemeral loopback listener, the fake switch dialling it like
//! FreeSWITCH's `socket` app, and the real session code driving it. Both sides' records come
//! back: the engine's timeline (modules, commands, results, branches) and the fake's transcript
//! (the exact ESL bytes it received and sent).

use crate::engine::EngineContext;
use crate::engine::session::{SessionOptions, SessionReport, run_session};
use crate::fakeswitch::{CallScript, Transcript, dial};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Both sides of one simulated call.
#[derive(Debug)]
pub struct Simulation {
    /// What the engine did.
    pub report: SessionReport,
    /// What the fake switch saw.
    pub transcript: Transcript,
}

/// Plays `script` against the engine described by `ctx` and returns both records.
pub async fn simulate(ctx: Arc<EngineContext>, script: CallScript) -> std::io::Result<Simulation> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let switch = tokio::spawn(dial(addr, script));
    let (stream, _) = listener.accept().await?;
    drop(listener);
    let report = run_session(
        stream,
        ctx,
        SessionOptions {
            record_timeline: true,
        },
    )
    .await;
    let transcript = switch
        .await
        .map_err(|e| std::io::Error::other(format!("fake switch task failed: {e}")))??;
    Ok(Simulation { report, transcript })
}
