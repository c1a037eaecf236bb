//! Checks the assumptions behind the patches in vendor/ (vendor/README.md): the vendored crates are
//! not workspace members, so their own unit tests never run here.

use freeswitch_esl_tokio::{EslEvent, EventHeader, normalize_header_key};

/// The `variable_*` fast path in `normalize_header_key` is only sound while no typed header's
/// wire name starts with that prefix (in any case).
#[test]
fn no_typed_header_starts_with_variable_prefix() {
    for header in EventHeader::ALL {
        assert!(
            !header
                .as_str()
                .to_ascii_lowercase()
                .starts_with("variable_"),
            "{header:?} would be shadowed by the variable_ fast path"
        );
    }
}

/// Channel variables keep their exact casing; framing and event headers are still canonicalised.
#[test]
fn header_keys_normalise_as_upstream() {
    assert_eq!(
        normalize_header_key("variable_sip_From_Host"),
        "variable_sip_From_Host"
    );
    assert_eq!(normalize_header_key("unique-id"), "Unique-ID");
    assert_eq!(normalize_header_key("UNIQUE-ID"), "Unique-ID");
    assert_eq!(normalize_header_key("PL_DATA"), "pl_data");
    assert_eq!(normalize_header_key("sip_content_type"), "sip_content_type");
    assert_eq!(normalize_header_key("x-custom-thing"), "X-Custom-Thing");

    let mut event = EslEvent::new();
    event.set_header("variable_Account_ID", "abc");
    event.set_header("unique-id", "u-1");
    assert_eq!(event.header_str("variable_Account_ID"), Some("abc"));
    assert_eq!(event.header(EventHeader::UniqueId), Some("u-1"));
    assert_eq!(event.header_str("Unique-ID"), Some("u-1"));
}
