//! An in-memory store holding one account and the 3-step callflow (answer, play, hangup) on
//! number 1000: the fixture of the engine tests that dial the listener directly.

use callflowd::store::Account;
use callflowd::store::memory::MemStore;
use serde_json::json;
use std::sync::Arc;

/// The id of the one callflow [`three_step_store`] holds.
pub const CALLFLOW_ID: &str = "cf000000000000000000000000000001";

/// Account `account` (named `name`) with answer -> play `media` -> hangup on number 1000,
/// validated like the API would (module defaults filled in).
pub fn three_step_store(account: &str, name: &str, media: &str) -> Arc<MemStore> {
    let store = Arc::new(MemStore::new());
    store.add_account(Account {
        id: account.into(),
        name: name.into(),
        realm: None,
    });
    let mut flow = json!({"module": "answer", "data": {}, "children": {"_": {
        "module": "play", "data": {"id": media}, "children": {"_": {
            "module": "hangup", "data": {}, "children": {}}}}}});
    let mut errors = callflowd::callflow::errors::FieldErrors::new();
    callflowd::modules::validate_flow(&mut flow, "flow", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    store.put(
        account,
        "callflows",
        CALLFLOW_ID,
        json!({"numbers": ["1000"], "flow": flow}),
    );
    store
}
