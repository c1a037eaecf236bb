//! Callflow JSON: request body -> depth pre-scan + parser -> validate -> PATCH merge (the part
//! after the first NUL byte is the PATCH body) -> validate. See `callflowd::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callflowd::fuzzing::callflow_json(data);
});
