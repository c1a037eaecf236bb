//! Command-line interface (clap): `serve`, `account create`, `validate`, `import`, `export`.
//!
//! Every subcommand takes the settings flags of [`ConfigArgs`] (also from `CALLFLOWD_*` and the
//! TOML file). Commands other than `serve` open the database directly, so they need the server
//! to be stopped (sled allows one process); they say so when it is running.

use crate::auth::secrets::{UserCredential, new_api_key};
use crate::config::{Config, ConfigArgs};
use crate::documents::{self, Collection, WriteContext};
use crate::service;
use crate::store::{ListRequest, SledStore, Store, StoreRead};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `callflowd`: Kazoo-style callflows on FreeSWITCH.
#[derive(Debug, Parser)]
#[command(
    name = "callflowd",
    version,
    about = "Runs Kazoo-style JSON callflows on FreeSWITCH (outbound Event Socket) behind a Kazoo-compatible REST API"
)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the ESL listener until SIGINT/SIGTERM.
    Serve,
    /// Manage accounts.
    Account {
        /// The account command.
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Validate callflow JSON files offline (same validator and error shape as the API).
    Validate {
        /// Files holding a callflow document or a `{"data":{...}}` envelope.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Import callflow files into an account (a file's `id` is kept: create or replace).
    Import {
        /// Target account id.
        #[arg(long)]
        account: String,
        /// Files holding a callflow document or a `{"data":{...}}` envelope.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Export an account's callflows as `<DIR>/<id>.json` (importable again).
    Export {
        /// Source account id.
        #[arg(long)]
        account: String,
        /// Output directory (created if missing).
        dir: PathBuf,
    },
}

/// `account` subcommands.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints its id and a new API key (shown once).
    Create {
        /// Account name (unique; `user_auth` finds accounts by it).
        #[arg(long)]
        name: String,
        /// SIP realm (unique; calls to this domain belong to the account).
        #[arg(long)]
        realm: Option<String>,
        /// Also create a user login with this username...
        #[arg(long, requires = "password")]
        username: Option<String>,
        /// ...and password (stored only as salted argon2 hashes of its md5/sha1 digests).
        #[arg(long, requires = "username")]
        password: Option<String>,
    },
}

/// Parses the command line and runs it; the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("callflowd: {error}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init_logging(config.log_format, &config.log_level);
    if let Command::Validate { files } = &cli.command {
        return validate_files(files);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("callflowd: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Account {
                command:
                    AccountCommand::Create {
                        name,
                        realm,
                        username,
                        password,
                    },
            } => create_account(&config, &name, realm.as_deref(), username.zip(password)).await,
            Command::Import { account, files } => import(&config, &account, &files).await,
            Command::Export { account, dir } => export(&config, &account, &dir),
            Command::Validate { .. } => Ok(ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("callflowd: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<ExitCode, String> {
    let running = service::start(config).await.map_err(|e| e.to_string())?;
    let url = running.api_url();
    if let Some(boot) = &running.bootstrap {
        println!(
            "callflowd: first start: created account {:?} (realm {})",
            boot.account_name,
            service::INITIAL_REALM
        );
        println!("  account id: {}", boot.account_id);
        println!("  API key:    {}", boot.api_key);
        println!(
            "  This key is shown only once (only its salted hash is stored). Get a token with:"
        );
        println!(
            "  curl -s -X PUT {url}/v2/api_auth -H 'Content-Type: application/json' -d '{{\"data\":{{\"api_key\":\"{}\"}}}}'",
            boot.api_key
        );
    }
    println!(
        "callflowd: API listening on {url}, ESL on {}",
        running.esl_addr
    );
    wait_for_signal().await;
    eprintln!("callflowd: shutting down");
    running.shutdown().await.map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn open_store(config: &Config) -> Result<SledStore, String> {
    SledStore::open(&config.data_dir).map_err(|e| e.to_string())
}

async fn create_account(
    config: &Config,
    name: &str,
    realm: Option<&str>,
    login: Option<(String, String)>,
) -> Result<ExitCode, String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
    let store = open_store(config)?;
    let account = store
        .create_account(name, realm)
        .await
        .map_err(|e| e.to_string())?;
    let key = new_api_key();
    store
        .add_api_key(&account.id, key.hash)
        .await
        .map_err(|e| e.to_string())?;
    println!("account_id: {}", account.id);
    println!("api_key: {}", key.key);
    if let Some((username, password)) = login {
        let user_id = crate::util::new_id();
        let credential =
            UserCredential::new(&user_id, &username, &password).map_err(|e| e.to_string())?;
        store
            .add_user_credential(&account.id, credential)
            .await
            .map_err(|e| e.to_string())?;
        println!("user_id: {user_id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A file's callflow: a bare document, or the `data` of a `{"data":{...}}` envelope.
fn read_document(path: &Path) -> Result<Value, Value> {
    let text = std::fs::read(path)
        .map_err(|e| json!({"file": {"unreadable": {"message": e.to_string()}}}))?;
    let value: Value = crate::util::parse_json(&text)
        .map_err(|e| json!({"json": {"invalid": {"message": e.to_string(), "target": "body"}}}))?;
    let is_envelope = value.get("data").is_some_and(Value::is_object)
        && ["numbers", "patterns", "flow"]
            .iter()
            .all(|k| value.get(k).is_none());
    Ok(if is_envelope {
        value["data"].clone()
    } else {
        value
    })
}

fn error_line(file: &Path, data: Value) -> String {
    json!({"file": file.display().to_string(), "status": "error", "error": "400",
           "message": "validation error", "data": data})
    .to_string()
}

fn callflows() -> &'static Collection {
    &crate::callflow::document::CALLFLOWS
}

fn validate_files(files: &[PathBuf]) -> ExitCode {
    let mut failed = 0;
    for file in files {
        let outcome = read_document(file).and_then(|doc| {
            let mut fields = documents::client_fields(doc).map_err(|e| e.to_json())?;
            (callflows().validate)(&mut fields).map_err(|e| e.to_json())
        });
        match outcome {
            Ok(()) => println!("ok {}", file.display()),
            Err(data) => {
                failed += 1;
                println!("{}", error_line(file, data));
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("callflowd: {failed} of {} file(s) invalid", files.len());
        ExitCode::FAILURE
    }
}

async fn import(config: &Config, account: &str, files: &[PathBuf]) -> Result<ExitCode, String> {
    let store = open_store(config)?;
    if store.account(account).map_err(|e| e.to_string())?.is_none() {
        return Err(format!("no account {account}"));
    }
    let request_id = format!("import-{}", crate::util::random_hex(8));
    let ctx = WriteContext {
        request_id: &request_id,
        if_match: None,
    };
    let mut failed = 0;
    for file in files {
        let doc = match read_document(file) {
            Ok(doc) => doc,
            Err(data) => {
                failed += 1;
                println!("{}", error_line(file, data));
                continue;
            }
        };
        let id = doc
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| crate::util::is_valid_id(id))
            .map(str::to_string);
        let result = match &id {
            Some(id) => documents::upsert(&store, callflows(), account, id, doc, ctx).await,
            None => documents::create(&store, callflows(), account, doc, None, ctx).await,
        };
        match result {
            Ok(stored) => println!("imported {} -> {}", file.display(), stored.id),
            Err(documents::DocError::Invalid(errors)) => {
                failed += 1;
                println!("{}", error_line(file, errors.to_json()));
            }
            Err(other) => return Err(format!("{}: {other}", file.display())),
        }
    }
    store.flush().await.map_err(|e| e.to_string())?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn export(config: &Config, account: &str, dir: &Path) -> Result<ExitCode, String> {
    let store = open_store(config)?;
    if store.account(account).map_err(|e| e.to_string())?.is_none() {
        return Err(format!("no account {account}"));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let page = store
        .list_docs(&ListRequest {
            account_id: account,
            collection: callflows().name,
            start: None,
            limit: None,
            filter: &|_| true,
        })
        .map_err(|e| e.to_string())?;
    for doc in &page.docs {
        let path = dir.join(format!("{}.json", doc.id));
        let text = serde_json::to_string_pretty(&Value::Object(doc.public()))
            .map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!(
        "exported {} callflow(s) to {}",
        page.docs.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
