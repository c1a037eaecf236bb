//! Metaflow `resume`: reconnects the caller with a held far end (cancelling a `hold`).
//! API: `uuid_hold off <peer>`, `uuid_break <uuid>`; disarms the unhold key. Children: `_`.

use super::{MetaNext, MetaflowModule};
use crate::engine::call::{Call, CallEnded};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `resume` metaflow module.
pub struct Resume;

/// No arguments.
#[derive(Debug, Deserialize)]
pub struct Data {}

impl MetaflowModule for Resume {
    const NAME: &'static str = "resume";
    type Data = Data;

    fn schema() -> Value {
        json!({"type": "object", "description": "Reconnect with the held party", "properties": {}})
    }

    async fn run(_data: Data, call: &mut Call) -> Result<MetaNext, CallEnded> {
        super::hold::unhold(call).await?;
        Ok(MetaNext::default_child())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{apis, me, meta, peer, run_bridged, said, said_line, secs};
    use serde_json::json;

    #[tokio::test]
    async fn resume_unholds_and_disarms_the_unhold_key() {
        let metaflow = json!({"digit_timeout": 1200, "numbers": {
            "4": meta("hold", json!({"unhold_key": "1"}), json!({})),
            "8": meta("resume", json!({}), json!({"_": said("resumed")})),
        }});
        // After the resume, `1` is no longer an unhold key: nothing more is sent.
        let digits = "*4@bridge+300ms,*8@bridge+3s,1@bridge+5500ms";
        let sim = run_bridged(metaflow, secs(7), digits).await;
        let (me, peer) = (me(&sim), peer(&sim));
        assert_eq!(
            apis(&sim),
            [
                format!("uuid_hold {peer}"),
                format!("uuid_hold off {peer}"),
                format!("uuid_break {me}"),
                said_line(&me, "resumed"),
            ]
        );
    }
}
