//! The offline commands: `validate`, `account create`, `import`, `export`.

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

fn callflowd(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callflowd"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("CALLFLOWD_LOG_LEVEL", "warn")
        .output()
        .expect("run callflowd")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn validate_reports_kazoo_shaped_errors_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &good,
        json!({"data": {"numbers": ["1000"], "flow": {"module": "answer", "data": {}}}})
            .to_string(),
    )
    .unwrap();
    std::fs::write(
        &bad,
        json!({"numbers": ["1"], "flow": {"module": "answer", "data": {}, "children": {"_": {"data": {}}}}}).to_string(),
    )
    .unwrap();
    let flows = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows/after-hours.json");

    let ok = callflowd(
        &["validate", good.to_str().unwrap(), flows.to_str().unwrap()],
        dir.path(),
    );
    assert!(ok.status.success(), "{}", stdout(&ok));

    let failed = callflowd(
        &["validate", good.to_str().unwrap(), bad.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(failed.status.code(), Some(1));
    let line = stdout(&failed)
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("an error line")
        .to_string();
    let error: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(error["message"], "validation error");
    assert_eq!(
        error["data"],
        json!({"flow.children._.module": {"required": {"message": "Field is required but missing"}}})
    );
}

#[test]
fn account_create_import_and_export_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = callflowd(
        &[
            "account",
            "create",
            "--name",
            "Acme",
            "--realm",
            "acme.test",
            "--username",
            "bob",
            "--password",
            "pw",
        ],
        &data,
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let text = stdout(&created);
    let account = text
        .lines()
        .find_map(|l| l.strip_prefix("account_id: "))
        .expect("account id printed")
        .to_string();
    assert_eq!(account.len(), 32);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("api_key: "))
        .expect("key printed");
    assert_eq!(key.len(), 64);

    let duplicate = callflowd(&["account", "create", "--name", "acme"], &data);
    assert!(!duplicate.status.success());

    let files = dir.path().join("in");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(
        files.join("a.json"),
        json!({"id": "0123456789abcdef0123456789abcdef", "name": "A", "numbers": ["100"], "flow": {"module": "hangup", "data": {}}}).to_string(),
    )
    .unwrap();
    std::fs::write(
        files.join("b.json"),
        json!({"data": {"name": "B", "patterns": ["^2\\d\\d$"]}}).to_string(),
    )
    .unwrap();
    std::fs::write(
        files.join("c.json"),
        json!({"name": "C", "numbers": ["100"]}).to_string(),
    )
    .unwrap();
    let a = files.join("a.json");
    let b = files.join("b.json");
    let c = files.join("c.json");
    let imported = callflowd(
        &[
            "import",
            "--account",
            &account,
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            c.to_str().unwrap(),
        ],
        &data,
    );
    assert_eq!(
        imported.status.code(),
        Some(1),
        "c.json duplicates a number"
    );
    let out = stdout(&imported);
    assert!(out.contains("-> 0123456789abcdef0123456789abcdef"), "{out}");
    assert!(out.contains("\"unique\""), "{out}");

    // Re-importing a file with an id replaces (no duplicate).
    let again = callflowd(
        &["import", "--account", &account, a.to_str().unwrap()],
        &data,
    );
    assert!(again.status.success(), "{}", stdout(&again));

    let out_dir = dir.path().join("out");
    let exported = callflowd(
        &["export", "--account", &account, out_dir.to_str().unwrap()],
        &data,
    );
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2);
    let a_out: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("0123456789abcdef0123456789abcdef.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(a_out["name"], "A");
    assert_eq!(a_out["flow"]["data"]["cause"], "NORMAL_CLEARING");
    assert!(a_out.get("pvt_type").is_none());

    // Exported files validate and import again into a fresh account.
    let second = callflowd(&["account", "create", "--name", "Second"], &data);
    let second_id = stdout(&second)
        .lines()
        .find_map(|l| l.strip_prefix("account_id: ").map(str::to_string))
        .unwrap();
    let mut args = vec!["import".to_string(), "--account".to_string(), second_id];
    args.extend(
        names
            .iter()
            .map(|n| out_dir.join(n).to_string_lossy().into_owned()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let reimported = callflowd(&args, &data);
    assert!(reimported.status.success(), "{}", stdout(&reimported));

    let missing = callflowd(
        &[
            "export",
            "--account",
            "ffffffffffffffffffffffffffffffff",
            out_dir.to_str().unwrap(),
        ],
        &data,
    );
    assert!(!missing.status.success());
}
