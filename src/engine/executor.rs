//! Walks a callflow with Kazoo's `cf_exe` semantics.
//!
//! - `Continue(key)`: `children[key]`, else `children["_"]`, else stop (`ContinueAny` tries
//!   several keys in order first).
//! - `Attempt(key)`: exactly `children[key]`, else stop.
//! - `Branch(flow)`: push the current node's non-empty `_` child, run `flow` (the `callflow`
//!   module returns to its caller this way); at most `max_branches` per call.
//! - `ContinueWithFlow(flow)`: replace the flow without counting (pivot).
//! - `Stop` / `StopWithCause`: pop the stack and go on, or hang up when it is empty.
//! - `HardStop`: end now, ignoring the stack. `Transfer`: end without hanging up.
//! - An empty node (`{}`) stops; an unknown module or `skip_module: true` continues to `_`.
//! - Once the channel hung up (or the socket is gone) no further module is launched: the flow
//!   ends, ignoring the stack (Kazoo's `stop_on_destroy`).
//!
//! Runaway flows are bounded by `max_steps`, `max_branches` and the call deadline; each limit
//! ends the call with a log line, never a hot loop.

use crate::callflow::model::Node;
use crate::engine::call::{Call, CallEnded, TimelineEntry};
use crate::modules::{self, Next};
use tracing::Instrument;

/// How a flow finished, which tells the session what to do with the channel.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowEnd {
    /// Hang up with this cause (if the channel is still up).
    Hangup(String),
    /// The call left our control (transfer, conference): do not hang up.
    Released,
    /// The call ended or the switch went away while the flow ran.
    Ended(CallEnded),
}

/// Runs `flow` on `call` until it finishes.
pub async fn run_flow(call: &mut Call, flow: Node) -> FlowEnd {
    let max_branches = call.ctx.config.max_branches;
    let max_steps = call.ctx.config.max_steps;
    let mut branches_left = max_branches;
    let mut steps = 0u32;
    let mut stack: Vec<Node> = Vec::new();
    let mut current = flow;

    loop {
        // Kazoo's `stop_on_destroy`: once the channel is gone, a `continue` becomes `hard_stop`
        // and a `stop` does not pop the stack, so no further module is launched.
        if let Some(ended) = call.ended() {
            call.note(TimelineEntry::Note {
                text: format!("flow ended: {ended}"),
            });
            return FlowEnd::Ended(ended);
        }
        if current.is_empty() {
            match pop_or_end(&mut stack, None) {
                Ok(node) => {
                    current = node;
                    continue;
                }
                Err(end) => return end,
            }
        }
        steps += 1;
        if steps > max_steps {
            tracing::warn!(
                steps = max_steps,
                "callflow ran too many steps; ending the call"
            );
            call.note(TimelineEntry::Note {
                text: format!("step limit {max_steps} reached"),
            });
            return FlowEnd::Hangup("NORMAL_CLEARING".into());
        }
        if call.remaining().is_zero() {
            tracing::warn!("call deadline reached; ending the call");
            return FlowEnd::Ended(CallEnded::Deadline);
        }

        let next = step(call, &current).await;
        // A metaflow `callflow` interrupts the step (its waits end with `Interrupted`): branch
        // to it, resuming at this node's `_`; unless the call ended or left meanwhile.
        let next = match call.take_requested_branch() {
            Some(flow)
                if !matches!(
                    next,
                    Err(CallEnded::HungUp(_))
                        | Err(CallEnded::Disconnected(_))
                        | Err(CallEnded::Transferred)
                ) =>
            {
                Ok(Next::Branch(Box::new(flow)))
            }
            _ => next,
        };
        let next = match next {
            Ok(next) => next,
            Err(CallEnded::Transferred) => {
                call.note(TimelineEntry::Note {
                    text: "call transferred away by a metaflow".into(),
                });
                return FlowEnd::Released;
            }
            Err(ended) => {
                call.note(TimelineEntry::Note {
                    text: format!("flow ended: {ended}"),
                });
                return FlowEnd::Ended(ended);
            }
        };

        match next {
            Next::Continue(key) => match take_child(&mut current, &key, true) {
                Some((taken, node)) => {
                    call.note(TimelineEntry::Branch { key: taken });
                    current = node;
                }
                None => {
                    call.note(TimelineEntry::Branch {
                        key: format!("{key} (no child: stop)"),
                    });
                    match pop_or_end(&mut stack, None) {
                        Ok(node) => current = node,
                        Err(end) => return end,
                    }
                }
            },
            Next::ContinueAny(keys) => {
                let found = keys
                    .iter()
                    .find(|k| current.children.contains_key(k.as_str()))
                    .cloned()
                    .or_else(|| current.children.contains_key("_").then(|| "_".to_string()));
                match found.and_then(|k| current.children.remove(&k).map(|c| (k, c))) {
                    Some((taken, node)) => {
                        call.note(TimelineEntry::Branch { key: taken });
                        current = node;
                    }
                    None => {
                        call.note(TimelineEntry::Branch {
                            key: format!("{} (no child: stop)", keys.join("|")),
                        });
                        match pop_or_end(&mut stack, None) {
                            Ok(node) => current = node,
                            Err(end) => return end,
                        }
                    }
                }
            }
            Next::Attempt(key) => match take_child(&mut current, &key, false) {
                Some((taken, node)) => {
                    call.note(TimelineEntry::Branch { key: taken });
                    current = node;
                }
                None => {
                    call.note(TimelineEntry::Branch {
                        key: format!("{key} (no child: stop)"),
                    });
                    match pop_or_end(&mut stack, None) {
                        Ok(node) => current = node,
                        Err(end) => return end,
                    }
                }
            },
            Next::Branch(flow) => {
                // Kazoo's `branch_count` starts at `max_branch_count` and a branch is refused
                // once it reaches 0: exactly `max_branches` branches are allowed.
                if branches_left == 0 {
                    tracing::warn!(
                        max_branches,
                        "callflow branched too many times; ending the call"
                    );
                    call.note(TimelineEntry::Note {
                        text: format!("branch limit {max_branches} reached"),
                    });
                    return FlowEnd::Hangup("NORMAL_CLEARING".into());
                }
                branches_left -= 1;
                if let Some(resume) = current.children.remove("_").filter(|n| !n.is_empty()) {
                    stack.push(resume);
                }
                call.note(TimelineEntry::Branch {
                    key: format!("branch -> {}", flow.module),
                });
                current = *flow;
            }
            Next::ContinueWithFlow(flow) => {
                call.note(TimelineEntry::Branch {
                    key: format!("continue with -> {}", flow.module),
                });
                current = *flow;
            }
            Next::Stop => {
                call.note(TimelineEntry::Branch { key: "stop".into() });
                match pop_or_end(&mut stack, None) {
                    Ok(node) => current = node,
                    Err(end) => return end,
                }
            }
            Next::StopWithCause(cause) => {
                call.note(TimelineEntry::Branch {
                    key: format!("stop ({cause})"),
                });
                match pop_or_end(&mut stack, Some(cause)) {
                    Ok(node) => current = node,
                    Err(end) => return end,
                }
            }
            Next::HardStop => {
                call.note(TimelineEntry::Branch {
                    key: "hard_stop".into(),
                });
                return FlowEnd::Hangup("NORMAL_CLEARING".into());
            }
            Next::Transfer => {
                call.note(TimelineEntry::Branch {
                    key: "released".into(),
                });
                return FlowEnd::Released;
            }
        }
    }
}

/// Removes the child the executor goes to next: `children[key]`, else (with `fallback`, Kazoo's
/// `continue`) `children["_"]`; without `fallback` (Kazoo's `attempt`) only the exact key.
fn take_child(node: &mut Node, key: &str, fallback: bool) -> Option<(String, Node)> {
    if let Some(child) = node.children.remove(key) {
        return Some((key.to_string(), child));
    }
    if fallback {
        return node.children.remove("_").map(|c| ("_".to_string(), c));
    }
    None
}

fn pop_or_end(stack: &mut Vec<Node>, cause: Option<String>) -> Result<Node, FlowEnd> {
    match stack.pop() {
        Some(node) => Ok(node),
        None => Err(FlowEnd::Hangup(
            cause.unwrap_or_else(|| "NORMAL_CLEARING".into()),
        )),
    }
}

/// Runs one node's module inside its own span.
async fn step(call: &mut Call, node: &Node) -> Result<Next, CallEnded> {
    call.note(TimelineEntry::Module {
        module: node.module.clone(),
        data: node.data.clone(),
    });
    if node.data.get("skip_module").and_then(|v| v.as_bool()) == Some(true) {
        return Ok(Next::default_child());
    }
    let Some(entry) = modules::get(&node.module) else {
        tracing::warn!(module = %node.module, "unknown module at run time; continuing to `_`");
        return Ok(Next::default_child());
    };
    let span = tracing::info_span!("module", module = %node.module);
    metrics::counter!("callflowd_module_runs_total", "module" => entry.name).increment(1);
    entry.run(node, call).instrument(span).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::session::SessionEnd;
    use crate::engine::testkit::{
        ACCOUNT, apps, branches, marker, markers, modules_run, node, notes, put_callflow, run,
        run_with_store, script, store_with_flow, validated,
    };
    use serde_json::json;
    use std::time::Duration;

    /// Callflow ids used as branch targets (32 hex characters, as the schema wants).
    const SUB: &str = "00000000000000000000000000000a01";
    const SUB2: &str = "00000000000000000000000000000a02";
    const MAIN: &str = "cf000000000000000000000000000001";

    fn hung_up_normally(sim: &crate::engine::simulate::Simulation) -> bool {
        sim.report.end == SessionEnd::Flow(FlowEnd::Hangup("NORMAL_CLEARING".into()))
            && sim.transcript.hangup_cause() == Some("NORMAL_CLEARING")
    }

    #[tokio::test]
    async fn continue_falls_back_to_the_default_child() {
        // check_cid asks for `nomatch` (caller 1001 does not start with 9); only `_` exists.
        let flow = node(
            "check_cid",
            json!({"regex": "^9"}),
            json!({"_": marker("fallback", json!({}))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(branches(&sim), ["_", "_ (no child: stop)"]);
        assert_eq!(apps(&sim), ["set marker=fallback"]);
        assert!(hung_up_normally(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn continue_without_any_child_stops_and_hangs_up() {
        let flow = node("check_cid", json!({"regex": "^9"}), json!({}));
        let sim = run(flow, script()).await;
        assert_eq!(branches(&sim), ["nomatch (no child: stop)"]);
        assert!(apps(&sim).is_empty());
        assert!(hung_up_normally(&sim), "{:?}", sim.report.end);
    }

    #[test]
    fn attempt_takes_the_exact_child_only() {
        // No registered module attempts a key it does not have (menu checks first), so the
        // choice itself is tested here: `attempt` never falls back to `_`, `continue` does.
        let mut node = Node::leaf("menu", json!({})).child("_", Node::leaf("noop", json!({})));
        assert_eq!(take_child(&mut node, "1", false), None);
        assert!(
            node.children.contains_key("_"),
            "attempt must not consume `_`"
        );
        let (key, child) = take_child(&mut node, "1", true).expect("continue falls back");
        assert_eq!((key.as_str(), child.module.as_str()), ("_", "noop"));

        let mut node = Node::leaf("menu", json!({}))
            .child("1", Node::leaf("play", json!({})))
            .child("_", Node::leaf("noop", json!({})));
        let (key, child) = take_child(&mut node, "1", false).expect("exact child");
        assert_eq!((key.as_str(), child.module.as_str()), ("1", "play"));
    }

    #[tokio::test]
    async fn attempt_runs_the_named_child_not_the_default() {
        // End to end: a menu entry `1` is an `attempt("1")`; `_` is not run afterwards.
        let store = store_with_flow(validated(node(
            "menu",
            json!({"id": "00000000000000000000000000000e01"}),
            json!({"1": marker("one", json!({})), "_": marker("default", json!({}))}),
        )));
        store.put(
            ACCOUNT,
            "menus",
            "00000000000000000000000000000e01",
            json!({"retries": 1, "timeout": 3000, "max_extension_length": 1}),
        );
        let script = script().dtmf_after_app('1', "set", 1, Duration::from_millis(200));
        let sim = run_with_store(store, script).await;
        assert_eq!(markers(&sim), ["one"]);
        assert_eq!(branches(&sim)[0], "1");
        assert!(hung_up_normally(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn branch_pushes_default_child_and_stop_pops_it() {
        // MAIN: callflow(SUB) then `_` = after-main.
        // SUB: callflow(SUB2) then `_` = after-sub.  SUB2: marker sub2 (no child: stop -> pop).
        let store = store_with_flow(validated(node(
            "callflow",
            json!({"id": SUB}),
            json!({"_": marker("after-main", json!({}))}),
        )));
        put_callflow(
            &store,
            SUB,
            json!([]),
            node(
                "callflow",
                json!({"id": SUB2}),
                json!({"_": marker("after-sub", json!({}))}),
            ),
        );
        put_callflow(&store, SUB2, json!([]), marker("sub2", json!({})));
        let sim = run_with_store(store, script()).await;
        assert_eq!(markers(&sim), ["sub2", "after-sub", "after-main"]);
        assert_eq!(
            branches(&sim),
            [
                "branch -> callflow",
                "branch -> set_variable",
                "_ (no child: stop)",
                "_ (no child: stop)",
                "_ (no child: stop)"
            ]
        );
        assert!(hung_up_normally(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn an_empty_child_in_a_branched_flow_returns_to_the_caller() {
        let store = store_with_flow(validated(node(
            "callflow",
            json!({"id": SUB}),
            json!({"_": marker("after", json!({}))}),
        )));
        put_callflow(&store, SUB, json!([]), marker("sub", json!({"_": {}})));
        let sim = run_with_store(store, script()).await;
        assert_eq!(markers(&sim), ["sub", "after"]);
    }

    #[tokio::test]
    async fn hard_stop_ignores_the_stack() {
        let store = store_with_flow(validated(node(
            "callflow",
            json!({"id": SUB}),
            json!({"_": marker("after", json!({}))}),
        )));
        put_callflow(
            &store,
            SUB,
            json!([]),
            node("hangup", json!({"cause": "USER_BUSY"}), json!({})),
        );
        let sim = run_with_store(store, script()).await;
        assert_eq!(apps(&sim), ["hangup USER_BUSY"]);
        assert!(markers(&sim).is_empty());
        assert_eq!(branches(&sim).last().map(String::as_str), Some("hard_stop"));
        assert_eq!(sim.transcript.hangup_cause(), Some("USER_BUSY"));
    }

    #[tokio::test]
    async fn a_dead_channel_launches_no_more_modules() {
        // `response 486` ends the channel; Kazoo then ignores the stack (stop after destroy), so
        // the caller's `_` (here a marker that would need the channel) never runs.
        let store = store_with_flow(validated(node(
            "callflow",
            json!({"id": SUB}),
            json!({"_": node("noop", json!({}), json!({"_": marker("after", json!({}))}))}),
        )));
        put_callflow(
            &store,
            SUB,
            json!([]),
            node("response", json!({"code": 486}), json!({})),
        );
        let sim = run_with_store(store, script()).await;
        assert_eq!(apps(&sim), ["respond 486"]);
        assert_eq!(modules_run(&sim), ["callflow", "response"]);
        assert_eq!(
            sim.report.end,
            SessionEnd::Flow(FlowEnd::Ended(CallEnded::HungUp("USER_BUSY".into())))
        );
        assert_eq!(sim.transcript.hangup_cause(), Some("USER_BUSY"));
    }

    #[tokio::test]
    async fn unknown_module_at_run_time_continues_to_default_child() {
        // Stored raw (the API would refuse it): Kazoo continues to `_`.
        let store = store_with_flow(json!({
            "module": "frobnicate",
            "data": {"x": 1},
            "children": {"_": validated(marker("after", json!({})))}
        }));
        let sim = run_with_store(store, script()).await;
        assert_eq!(modules_run(&sim), ["frobnicate", "set_variable"]);
        assert_eq!(apps(&sim), ["set marker=after"]);
        assert!(hung_up_normally(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn unparsable_module_data_continues_to_default_child() {
        // A stored node whose data no longer fits the module (schema changed): continue.
        let store = store_with_flow(json!({
            "module": "play",
            "data": {"id": 42},
            "children": {"_": validated(marker("after", json!({})))}
        }));
        let sim = run_with_store(store, script()).await;
        assert_eq!(apps(&sim), ["set marker=after"]);
    }

    #[tokio::test]
    async fn skip_module_continues_without_running_it() {
        let flow = node(
            "play",
            json!({"id": "silence_stream://5000", "skip_module": true}),
            json!({"_": marker("after", json!({}))}),
        );
        let sim = run(flow, script()).await;
        assert_eq!(apps(&sim), ["set marker=after"]);
        assert_eq!(modules_run(&sim), ["play", "set_variable"]);
    }

    #[tokio::test]
    async fn branch_limit_ends_a_self_branching_callflow_with_a_hangup() {
        // MAIN branches to itself forever: Kazoo allows max_branch_count (50) branches.
        let store = store_with_flow(validated(node("callflow", json!({"id": MAIN}), json!({}))));
        let sim = run_with_store(store, script()).await;
        let branched = branches(&sim)
            .iter()
            .filter(|b| b.as_str() == "branch -> callflow")
            .count();
        assert_eq!(branched, 50);
        assert!(notes(&sim).iter().any(|n| n == "branch limit 50 reached"));
        assert_eq!(modules_run(&sim).len(), 51);
        assert!(hung_up_normally(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn step_limit_ends_a_runaway_flow_with_a_hangup() {
        // 30 noops then a branch back to the top: ~32 rounds fit in 1,000 steps, under the
        // branch limit, so the step limit is what ends it.
        let mut flow = node("callflow", json!({"id": MAIN}), json!({}));
        for _ in 0..30 {
            flow = node("noop", json!({}), json!({"_": flow}));
        }
        let store = store_with_flow(validated(flow));
        let sim = run_with_store(store, script()).await;
        assert_eq!(modules_run(&sim).len(), 1000);
        assert!(notes(&sim).iter().any(|n| n == "step limit 1000 reached"));
        assert!(!notes(&sim).iter().any(|n| n.starts_with("branch limit")));
        assert!(apps(&sim).is_empty());
        assert!(hung_up_normally(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn an_empty_flow_stops_at_once() {
        let store = store_with_flow(json!({}));
        let sim = run_with_store(store, script()).await;
        assert!(modules_run(&sim).is_empty());
        assert!(apps(&sim).is_empty());
        assert!(hung_up_normally(&sim), "{:?}", sim.report.end);
    }

    #[tokio::test]
    async fn an_empty_child_stops() {
        let flow = marker("only", json!({"_": {}}));
        let sim = run(flow, script()).await;
        assert_eq!(apps(&sim), ["set marker=only"]);
        assert!(hung_up_normally(&sim), "{:?}", sim.report.end);
    }
}
