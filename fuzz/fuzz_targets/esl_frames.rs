//! ESL frames into the engine: a fake FreeSWITCH peer answers `connect`, then replays the input
//! frame by frame into a real engine session over loopback TCP (one current-thread runtime per
//! input). The session must end, without a panic, leaving no task. See `callflowd::fuzzing`.
#![no_main]

use callflowd::engine::EngineContext;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

fn engine() -> Arc<EngineContext> {
    static ENGINE: OnceLock<Arc<EngineContext>> = OnceLock::new();
    ENGINE.get_or_init(callflowd::fuzzing::esl_engine).clone()
}

fuzz_target!(|data: &[u8]| {
    callflowd::fuzzing::esl_session_blocking(engine(), data);
});
