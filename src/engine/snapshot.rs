//! A compact, read-only copy of a channel event's headers.
//!
//! Every CHANNEL_EXECUTE_COMPLETE repeats the caller profile and all ~150 channel variables. The
//! call keeps the latest one for its whole life (modules read variables from it), and a parked
//! call may live for hours while thousands of others do the same. Parsed, an event is an
//! `IndexMap` of ~300 separately allocated `String`s plus a case-alias map: about 30 KB. Here the
//! same headers are one string and one sorted index: about the size of the wire text.

use freeswitch_esl_tokio::EslEvent;

/// Where one header sits in [`ChannelSnapshot::text`]: key is `text[key..value]`, value is
/// `text[value..end]`.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u32,
    value: u32,
    end: u32,
}

/// The headers of one event, sorted by key, looked up like `EslEvent::header_str`: an exact key
/// first, then, for keys without `_` (framing and event headers, not channel variables), any
/// casing of it.
#[derive(Debug, Clone, Default)]
pub struct ChannelSnapshot {
    text: Box<str>,
    slots: Box<[Slot]>,
}

impl ChannelSnapshot {
    /// Copies the headers of `event` (its body, if any, is not kept).
    pub fn from_event(event: &EslEvent) -> Self {
        let headers = event.headers();
        let mut order: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        order.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let total: usize = order.iter().map(|(k, v)| k.len() + v.len()).sum();
        if u32::try_from(total).is_err() {
            // Beyond 4 GiB of headers (impossible on the wire: frames are bounded far lower).
            return Self::default();
        }
        let mut text = String::with_capacity(total);
        let mut slots = Vec::with_capacity(order.len());
        for (key, value) in order {
            let start = text.len() as u32;
            text.push_str(key);
            let middle = text.len() as u32;
            text.push_str(value);
            slots.push(Slot {
                key: start,
                value: middle,
                end: text.len() as u32,
            });
        }
        Self {
            text: text.into_boxed_str(),
            slots: slots.into_boxed_slice(),
        }
    }

    fn key(&self, slot: &Slot) -> &str {
        &self.text[slot.key as usize..slot.value as usize]
    }

    fn value(&self, slot: &Slot) -> &str {
        &self.text[slot.value as usize..slot.end as usize]
    }

    /// A header by name (`Caller-Destination-Number`, `variable_foo`...).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        if let Ok(found) = self.slots.binary_search_by(|slot| self.key(slot).cmp(name)) {
            return Some(self.value(&self.slots[found]));
        }
        if name.contains('_') {
            return None;
        }
        self.slots
            .iter()
            .find(|slot| {
                let key = self.key(slot);
                !key.contains('_') && key.eq_ignore_ascii_case(name)
            })
            .map(|slot| self.value(slot))
    }

    /// A channel variable by its bare name (`variable_` + name).
    pub fn variable_str(&self, name: &str) -> Option<&str> {
        let mut key = String::with_capacity(9 + name.len());
        key.push_str("variable_");
        key.push_str(name);
        self.header_str(&key)
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// `true` when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Heap bytes held (for the memory benchmarks and tests).
    pub fn heap_bytes(&self) -> usize {
        self.text.len() + self.slots.len() * std::mem::size_of::<Slot>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> EslEvent {
        let mut event = EslEvent::new();
        event.set_header("Event-Name", "CHANNEL_EXECUTE_COMPLETE");
        event.set_header("Unique-ID", "u-1");
        event.set_header("Application-Response", "FILE PLAYED");
        event.set_header("Caller-Destination-Number", "1000");
        event.set_header("variable_sip_From_Host", "example.com");
        event.set_header("variable_read_result", "success");
        event.set_header("variable_empty", "");
        event.set_body("ignored body");
        event
    }

    #[test]
    fn every_header_reads_back_as_from_the_event() {
        let event = event();
        let snapshot = ChannelSnapshot::from_event(&event);
        assert_eq!(snapshot.len(), event.headers().len());
        for (key, value) in event.headers() {
            assert_eq!(snapshot.header_str(key), Some(value.as_str()), "{key}");
        }
        assert_eq!(snapshot.variable_str("read_result"), Some("success"));
        assert_eq!(snapshot.variable_str("empty"), Some(""));
        assert_eq!(snapshot.variable_str("sip_From_Host"), Some("example.com"));
    }

    #[test]
    fn casing_rules_follow_the_event() {
        let event = event();
        let snapshot = ChannelSnapshot::from_event(&event);
        for name in [
            "unique-id",
            "APPLICATION-RESPONSE",
            "variable_sip_from_host",
            "variable_READ_RESULT",
            "missing",
            "variable_missing",
        ] {
            assert_eq!(snapshot.header_str(name), event.header_str(name), "{name}");
        }
    }

    #[test]
    fn smaller_than_the_parsed_event() {
        let mut event = EslEvent::new();
        for n in 0..150 {
            event.set_header(format!("variable_var_{n}"), format!("value-{n}"));
        }
        let snapshot = ChannelSnapshot::from_event(&event);
        assert_eq!(snapshot.variable_str("var_149"), Some("value-149"));
        assert!(
            snapshot.heap_bytes() < 150 * 40,
            "{}",
            snapshot.heap_bytes()
        );
        assert!(ChannelSnapshot::default().is_empty());
    }
}
