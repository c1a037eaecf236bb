//! Command-line interface (clap): `serve`, `account create`, `validate`, `import`, `export`,
//! `fsck`, `simulate`, `loadgen`.
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
    /// Check the database offline (the server must be stopped): documents against the
    /// number/pattern index and the routing index rebuilt from it. Exit 1 on any disagreement.
    Fsck {
        /// Check one account only.
        #[arg(long)]
        account: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Dry-run a number: the real engine drives the account's callflow against the built-in
    /// fake FreeSWITCH and the timeline is printed (module, ESL command, result, branch).
    Simulate(SimulateArgs),
    /// Load generator: plays FreeSWITCH's side of many outbound-ESL calls against a controller
    /// (callflowd or any other) and reports calls/s, failures and command turnaround.
    Loadgen(LoadgenArgs),
}

/// `simulate` options.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Account whose callflows route the number.
    #[arg(long)]
    pub account: String,
    /// The dialled number.
    #[arg(long)]
    pub number: String,
    /// Caller DTMF: `1@2s,#@3s` (time since the call started) or `1@playback#2+300ms`.
    #[arg(long)]
    pub digits: Option<String>,
    /// Far-end DTMF codes while bridged (metaflows), `*2101@5s,...`.
    #[arg(long)]
    pub peer_digits: Option<String>,
    /// The caller hangs up after this long (`30s`).
    #[arg(long)]
    pub hangup_after: Option<String>,
    /// Caller-ID number.
    #[arg(long, default_value = "5551234")]
    pub caller: String,
    /// How long each media app takes.
    #[arg(long)]
    pub media_time: Option<String>,
    /// How bridges end: `answered`, `answered:30s`, or a cause (`USER_BUSY`, `NO_ANSWER`).
    #[arg(long)]
    pub bridge: Option<String>,
    /// Run through the running server's API with this token (sled allows one process, so a
    /// running server must do the dry run itself).
    #[arg(long, env = "CALLFLOWD_TOKEN")]
    pub token: Option<String>,
    /// Print the JSON reply instead of the timeline text.
    #[arg(long)]
    pub json: bool,
}

/// `loadgen` options.
#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {
    /// Controller address (default: this config's ESL listener).
    #[arg(long)]
    pub target: Option<std::net::SocketAddr>,
    /// New calls per second.
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Calls kept in flight.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// How long calls are started (`60s`).
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Dialled numbers, used in turn.
    #[arg(long, default_value = "1000", value_delimiter = ',')]
    pub number: Vec<String>,
    /// `variable_account_id` on every call (omit to let the controller find the account).
    #[arg(long)]
    pub account: Option<String>,
    /// Caller behaviour as JSON: `{"digits":"1@2s","hangup_after":"30s","answer_delay":"1s",
    /// "media_time":"0s","app_start_delay":"20ms"}` or `@file.json`.
    #[arg(long)]
    pub script: Option<String>,
    /// How long each media app takes (overrides the script).
    #[arg(long)]
    pub media_time: Option<String>,
    /// The hangup cause a completed call ends with.
    #[arg(long, default_value = "NORMAL_CLEARING")]
    pub expected_cause: String,
    /// Never more than this many calls in flight.
    #[arg(long, default_value_t = 50_000)]
    pub max_in_flight: usize,
    /// With --concurrency: at most this many new calls per second while filling up.
    #[arg(long, default_value_t = 2_000.0)]
    pub ramp: f64,
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
            Command::Fsck { account, json } => fsck(&config, account.as_deref(), json),
            Command::Simulate(args) => simulate(&config, args).await,
            Command::Loadgen(args) => loadgen(&config, args).await,
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
    SledStore::open_with_cache(&config.data_dir, config.db_cache_bytes()).map_err(|e| e.to_string())
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

fn fsck(config: &Config, account: Option<&str>, as_json: bool) -> Result<ExitCode, String> {
    if !config.data_dir.exists() {
        return Err(format!("no database at {}", config.data_dir.display()));
    }
    let store = open_store(config)?;
    let report = store
        .check_consistency(account)
        .map_err(|e| e.to_string())?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!("fsck {}", config.data_dir.display());
        println!("{report}");
    }
    Ok(if report.is_consistent() {
        if !as_json {
            println!("consistent");
        }
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "callflowd: {} problem(s) in {}",
            report.problems.len(),
            config.data_dir.display()
        );
        ExitCode::FAILURE
    })
}

async fn simulate(config: &Config, args: SimulateArgs) -> Result<ExitCode, String> {
    use crate::engine::simulate::{
        SimulateRequest, describe_end, render_timeline, simulate, timeline_json,
    };
    let request = SimulateRequest {
        number: args.number.clone(),
        caller: args.caller.clone(),
        digits: args.digits.clone(),
        peer_digits: args.peer_digits.clone(),
        hangup_after: args.hangup_after.clone(),
        media_time: args.media_time.clone(),
        bridge: args.bridge.clone(),
    };
    if let Some(token) = &args.token {
        return simulate_remote(config, &args, token, &request).await;
    }
    let script = request.script(&args.account)?;
    let store = open_store(config).map_err(|e| {
        format!("{e}\n(is the server running? then pass --token TOKEN to simulate through it)")
    })?;
    let store: std::sync::Arc<dyn StoreRead> = std::sync::Arc::new(store);
    if store
        .account(&args.account)
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!("no account {}", args.account));
    }
    let ctx = crate::engine::EngineContext::new(config.engine(), store);
    let simulation = simulate(ctx, script).await.map_err(|e| e.to_string())?;
    if args.json {
        let reply = json!({
            "number": args.number,
            "end": describe_end(&simulation),
            "timeline": timeline_json(&simulation.report.timeline),
            "esl_commands": simulation.transcript.command_lines(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&reply).unwrap_or_default()
        );
    } else {
        println!(
            "simulated call to {} in account {}",
            args.number, args.account
        );
        print!("{}", render_timeline(&simulation.report.timeline));
        println!("end: {}", describe_end(&simulation));
    }
    Ok(ExitCode::SUCCESS)
}

async fn simulate_remote(
    config: &Config,
    args: &SimulateArgs,
    token: &str,
    request: &crate::engine::simulate::SimulateRequest,
) -> Result<ExitCode, String> {
    let url = format!(
        "http://{}/v2/accounts/{}/simulate",
        config.listen, args.account
    );
    let body = json!({"data": {
        "number": request.number, "caller": request.caller, "digits": request.digits,
        "peer_digits": request.peer_digits, "hangup_after": request.hangup_after,
        "media_time": request.media_time, "bridge": request.bridge,
    }});
    let reply = reqwest::Client::new()
        .post(&url)
        .header("X-Auth-Token", token)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = reply.status();
    let envelope: Value = reply
        .json()
        .await
        .map_err(|e| format!("bad reply from {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{status}: {envelope}"));
    }
    let data = &envelope["data"];
    if args.json {
        println!("{}", serde_json::to_string_pretty(data).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "simulated call to {} in account {}",
        args.number, args.account
    );
    for step in data["timeline"].as_array().into_iter().flatten() {
        let at = step["at_ms"].as_f64().unwrap_or_default() / 1000.0;
        let line = if let Some(module) = step["module"].as_str() {
            format!("module {module} {}", step["data"])
        } else if let Some(command) = step["command"].as_str() {
            format!("  > {command}")
        } else if let Some(app) = step["app"].as_str() {
            format!("  < {app}: {}", step["result"].as_str().unwrap_or_default())
        } else if let Some(key) = step["branch"].as_str() {
            format!("  -> {key}")
        } else if let Some(digit) = step["dtmf"].as_str() {
            format!("  dtmf {digit}")
        } else {
            format!("  # {}", step["note"].as_str().unwrap_or_default())
        };
        println!("{at:>8.3}s  {line}");
    }
    println!("end: {}", data["end"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// Caller behaviour for `loadgen --script`.
#[derive(Debug, Default, serde::Deserialize)]
struct LoadScript {
    #[serde(default)]
    digits: Option<String>,
    #[serde(default)]
    hangup_after: Option<String>,
    #[serde(default)]
    answer_delay: Option<String>,
    #[serde(default)]
    media_time: Option<String>,
    #[serde(default)]
    app_start_delay: Option<String>,
}

async fn loadgen(config: &Config, args: LoadgenArgs) -> Result<ExitCode, String> {
    use crate::engine::simulate::parse_duration;
    use crate::fakeswitch::CallScript;
    use crate::loadgen::{LoadOptions, Pace};
    let script: LoadScript = match args.script.as_deref() {
        None => LoadScript::default(),
        Some(text) => {
            let text = match text.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
                None => text.to_string(),
            };
            serde_json::from_str(&text).map_err(|e| format!("--script: {e}"))?
        }
    };
    let media_time = parse_duration(
        args.media_time
            .as_deref()
            .or(script.media_time.as_deref())
            .unwrap_or("0s"),
    )?;
    let hangup_after = script
        .hangup_after
        .as_deref()
        .map(parse_duration)
        .transpose()?;
    let answer_delay = script
        .answer_delay
        .as_deref()
        .map(parse_duration)
        .transpose()?;
    let app_start_delay = script
        .app_start_delay
        .as_deref()
        .map(parse_duration)
        .transpose()?;
    if let Some(digits) = &script.digits {
        CallScript::parse_digits(digits).map_err(|e| format!("--script digits: {}", e.0))?;
    }
    let numbers = args.number.clone();
    if numbers.is_empty() {
        return Err("--number needs at least one number".into());
    }
    let account = args.account.clone();
    let digits = script.digits.clone();
    let build = move |n: u64| {
        let number = &numbers[(n as usize) % numbers.len()];
        let mut call = CallScript::new(number)
            .account(account.as_deref())
            .media_time(media_time)
            .lean();
        if let Some(digits) = &digits {
            if let Ok(with_digits) = call.clone().dtmf(digits) {
                call = with_digits;
            }
        }
        if let Some(after) = hangup_after {
            call = call.hangup_after(after);
        }
        if let Some(delay) = answer_delay {
            call = call.app_duration("answer", delay);
        }
        if let Some(delay) = app_start_delay {
            call = call.app_start_delay(delay);
        }
        call
    };
    let pace = match (args.rate, args.concurrency) {
        (Some(rate), _) if rate > 0.0 => Pace::Rate(rate),
        (_, Some(c)) if c > 0 => Pace::Concurrency(c),
        _ => Pace::Concurrency(100),
    };
    let options = LoadOptions {
        target: args.target.unwrap_or(config.esl_listen),
        pace,
        duration: parse_duration(&args.duration)?,
        script: std::sync::Arc::new(build),
        expected_cause: args.expected_cause.clone(),
        max_in_flight: args.max_in_flight,
        ramp_per_sec: args.ramp,
    };
    eprintln!(
        "loadgen: {:?} against {} for {:?}",
        options.pace, options.target, options.duration
    );
    let report = crate::loadgen::run(options).await;
    println!("{report}");
    Ok(if report.failed() == 0 && report.completed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
