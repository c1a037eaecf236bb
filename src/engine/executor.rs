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
//! - A call that hangs up ends the flow (Kazoo's `stop_on_destroy`).
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
        // A metaflow `callflow` interrupts the step: branch to it, resuming at this node's `_`.
        let next = match call.take_requested_branch() {
            Some(flow)
                if !matches!(
                    next,
                    Err(CallEnded::HungUp(_)) | Err(CallEnded::Disconnected(_))
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
            Next::Continue(key) => {
                let child = current
                    .children
                    .remove(&key)
                    .map(|c| (key.clone(), c))
                    .or_else(|| current.children.remove("_").map(|c| ("_".to_string(), c)));
                match child {
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
                }
            }
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
            Next::Attempt(key) => match current.children.remove(&key) {
                Some(node) => {
                    call.note(TimelineEntry::Branch { key });
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
                if branches_left <= 1 {
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
