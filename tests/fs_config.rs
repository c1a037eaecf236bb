//! The FreeSWITCH configuration shipped in `fs-config/` (the lab included) is well-formed XML
//! and wires what the lab README says: the lab profile's context and authentication, the
//! mod_xml_curl directory binding pointing at callflowd's `/directory`, the dialplan context
//! handing calls to the ESL socket, and `flows/office.json` carrying the placeholder ids the
//! README replaces.

mod common;

use common::xml::{Element, parse_xml};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn xml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("fs-config is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            xml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "xml") {
            out.push(path);
        }
    }
}

fn load(relative: &str) -> Element {
    let text = std::fs::read_to_string(root().join(relative)).expect("file exists");
    parse_xml(&text)
}

fn params(element: &Element) -> Vec<(String, String)> {
    element.named_values("param")
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("param {name} missing"))
}

#[test]
fn every_shipped_xml_file_is_well_formed() {
    let mut files = Vec::new();
    xml_files(&root().join("fs-config"), &mut files);
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let doc = parse_xml(&text);
        assert!(!doc.name.is_empty(), "{}", file.display());
    }
}

#[test]
fn the_lab_is_wired_together() {
    let profile = load("fs-config/lab/sip_profiles/callflowd-lab.xml");
    assert_eq!(profile.name, "profile");
    assert_eq!(profile.attr("name"), Some("callflowd-lab"));
    let settings = params(profile.child("settings"));
    assert_eq!(param(&settings, "context"), "callflowd");
    assert_eq!(param(&settings, "auth-calls"), "true");
    assert_eq!(param(&settings, "accept-blind-reg"), "false");
    assert_eq!(param(&settings, "sip-ip"), "$${lab_ip}");
    assert_eq!(param(&settings, "sip-port"), "$${lab_sip_port}");

    let vars = load("fs-config/lab/vars.xml");
    let sets: Vec<&str> = vars
        .children("X-PRE-PROCESS")
        .iter()
        .filter_map(|e| e.attr("data"))
        .collect();
    assert!(sets.iter().any(|d| d.starts_with("lab_ip=")), "{sets:?}");
    assert!(
        sets.iter().any(|d| d.starts_with("lab_sip_port=")),
        "{sets:?}"
    );

    let curl = load("fs-config/lab/autoload_configs/xml_curl.conf.xml");
    assert_eq!(curl.attr("name"), Some("xml_curl.conf"));
    let binding = curl.child("bindings").child("binding");
    let url = binding
        .children("param")
        .into_iter()
        .find(|p| p.attr("name") == Some("gateway-url"))
        .expect("gateway-url");
    assert_eq!(url.attr("value"), Some("http://127.0.0.1:8000/directory"));
    assert_eq!(url.attr("bindings"), Some("directory"));
    let binding_params = params(binding);
    assert!(param(&binding_params, "gateway-credentials").contains(':'));
    assert_eq!(param(&binding_params, "auth-scheme"), "basic");

    let dialplan = load("fs-config/lab/dialplan/callflowd-lab.xml");
    let context = dialplan.child("context");
    assert_eq!(context.attr("name"), Some("callflowd"));
    let actions = context.descendants("action");
    let socket = actions
        .iter()
        .position(|a| a.attr("application") == Some("socket"))
        .expect("socket action");
    assert_eq!(
        actions[socket].attr("data"),
        Some("127.0.0.1:8084 async full")
    );
    assert!(
        actions[socket + 1..]
            .iter()
            .any(|a| a.attr("application") == Some("hangup")),
        "a fallback follows the socket"
    );

    // The README replaces these placeholder ids with the menu's and devices' real ids.
    let office = std::fs::read_to_string(root().join("flows/office.json")).unwrap();
    let readme = std::fs::read_to_string(root().join("fs-config/lab/README.md")).unwrap();
    for placeholder in [
        "00000000000000000000000000001000",
        "00000000000000000000000000002001",
        "00000000000000000000000000002002",
    ] {
        assert!(office.contains(placeholder), "{placeholder}");
        assert!(
            readme.contains(&format!("s/{placeholder}/")),
            "{placeholder}"
        );
    }
}
