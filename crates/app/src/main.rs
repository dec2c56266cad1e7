//! The `switchboard` binary: configuration, telemetry, store choice, start and stop.

mod config;
mod doctor;
mod drain;
mod numbers;
mod secrets;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Config, Flags, LogFormat};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use switchboard_domain::ids::OrgId;
use switchboard_store::{BootstrapInput, Store};
use switchboard_web::{Application, WebConfig};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Multi-tenant AI phone and messaging agents"
)]
struct Cli {
    /// Configuration file (default: ./switchboard.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database URL (overrides SWITCHBOARD_DATABASE_URL); unset means SQLite under ./data/.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP server (migrates first; creates a first organization on an empty database).
    Serve {
        /// Port to listen on (overrides SWITCHBOARD_PORT).
        #[arg(long)]
        port: Option<u16>,
        /// Address to listen on (overrides SWITCHBOARD_HOST).
        #[arg(long)]
        host: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Manage API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Manage dashboard logins.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Check configuration and environment; print each problem with its fix.
    Doctor,
    /// Write a consistent copy of the SQLite database while the server runs (PostgreSQL:
    /// use pg_dump).
    Backup {
        /// The file to write; must not exist.
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Manage the master keys that encrypt stored credentials.
    Secrets {
        #[command(subcommand)]
        command: secrets::SecretsCommand,
    },
    /// Prove phone numbers belong to their organizations (Twilio IncomingPhoneNumbers).
    Numbers {
        #[command(subcommand)]
        command: numbers::NumbersCommand,
    },
    /// Drain a running server: it takes no new calls, lets live calls finish (up to
    /// SWITCHBOARD_DRAIN_TIMEOUT_SECONDS), then exits. Needs SWITCHBOARD_OPERATOR_KEY.
    Drain {
        /// The server's address (default: http://127.0.0.1:<SWITCHBOARD_PORT>).
        #[arg(long)]
        url: Option<String>,
        /// Wait until the server has stopped, printing the live calls left.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a dashboard login and print its generated password (shown once).
    Create {
        /// Organization id (`org_...`).
        #[arg(long)]
        org: String,
        /// Login e-mail (unique platform-wide).
        #[arg(long)]
        email: String,
        /// `admin` (manages the organization), `member` (reads it) or `operator` (every
        /// organization).
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Give a login a new generated password (printed once), sign it out everywhere, and
    /// record it in its organization's audit trail: for a forgotten password when the server
    /// cannot send e-mail.
    ResetPassword {
        /// The login's e-mail.
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization and print its id.
    Create {
        /// Display name.
        name: String,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Create an API key for an organization and print it (shown once).
    Create {
        /// Organization id (`org_...`).
        #[arg(long)]
        org: String,
        /// A label for the key.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (port, host) = match &cli.command {
        Command::Serve { port, host } => (*port, host.clone()),
        _ => (None, None),
    };
    let flags = Flags {
        config: cli.config.clone(),
        host,
        port,
        database_url: cli.database_url.clone(),
    };
    if let Command::Secrets {
        command: secrets::SecretsCommand::NewKey,
    } = cli.command
    {
        // Needs no configuration: production refuses to start without a key, and this is
        // how one gets one.
        println!("{}", switchboard_store::keyring::new_key());
        return ExitCode::SUCCESS;
    }
    let loaded = Config::load(&flags, &config::process_env());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Doctor = cli.command {
        return runtime.block_on(doctor::run(loaded));
    }
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr so that stdout carries only what commands print (ids, keys).
    // Colour codes only for a person at a terminal: a file, a pipe or journald gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Opens the store. `serving` (the long-running server, as opposed to an operator's command)
/// refuses a privileged PostgreSQL login in production.
async fn open_store(config: &Config, serving: bool) -> anyhow::Result<Store> {
    let (keyring, note) = config::open_keyring(config, true)
        .context("cannot read the master key (`switchboard doctor` explains)")?;
    if let Some(note) = note {
        tracing::warn!("{note}");
    }
    let mut opts = config.store_options(keyring);
    opts.refuse_privileged_login &= serving;
    // A new embedded database is made wherever the command runs: say where, so a command run
    // from the wrong directory does not silently work on an empty one.
    if let Some(path) = config.missing_embedded_database() {
        tracing::warn!(
            path = %path.display(),
            "no database here yet: creating a new, empty one (if you have one elsewhere, run from its directory or set SWITCHBOARD_DATA_DIR)"
        );
    }
    Store::open(&opts).await.with_context(|| {
        "cannot open the database (check SWITCHBOARD_DATABASE_URL; `switchboard doctor` explains)"
    })
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } => serve(config).await,
        Command::Backup { to } => {
            // A backup of a database that is not there would be a new empty one: refuse.
            if let Some(path) = config.missing_embedded_database() {
                anyhow::bail!(
                    "no database at {}: run where `switchboard serve` runs, or set SWITCHBOARD_DATA_DIR",
                    path.display()
                );
            }
            let store = open_store(&config, false).await?;
            let bytes = store.backup_to(&to).await;
            store.close().await;
            let bytes = bytes?;
            println!("backup written to {} ({bytes} bytes)", to.display());
            Ok(())
        }
        Command::Migrate => {
            let store = open_store(&config, false).await?;
            let applied = store.migrate().await?;
            if applied.is_empty() {
                println!("database is up to date ({})", store.description());
            } else {
                println!("applied migrations {applied:?} ({})", store.description());
            }
            store.close().await;
            Ok(())
        }
        Command::Org {
            command: OrgCommand::Create { name },
        } => {
            let store = open_store(&config, false).await?;
            store.migrate().await?;
            let org = store.create_org(&name).await?;
            println!("{}", org.id);
            store.close().await;
            Ok(())
        }
        Command::User {
            command: UserCommand::Create { org, email, role },
        } => {
            let org_id = OrgId::parse(&org).with_context(|| {
                format!("`{org}` is not an organization id (they look like org_...)")
            })?;
            let role = switchboard_domain::values::Role::parse(&role).with_context(|| {
                format!("`{role}` is not a role; use admin, member or operator")
            })?;
            let store = open_store(&config, false).await?;
            store.migrate().await?;
            let password = switchboard_domain::auth::generate_password();
            let user = match store.create_user(&org_id, &email, &password, role).await {
                Err(switchboard_store::StoreError::NotFound) => {
                    anyhow::bail!("no organization {org}")
                }
                other => other?,
            };
            println!("{}  password: {}", user.email, password.expose());
            store.close().await;
            Ok(())
        }
        Command::User {
            command: UserCommand::ResetPassword { email },
        } => {
            let store = open_store(&config, false).await?;
            store.migrate().await?;
            let password = switchboard_domain::auth::generate_password();
            let hash = switchboard_domain::auth::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
            let actor = switchboard_domain::team::Actor::cli();
            let now = switchboard_domain::Timestamp::now();
            let user = match store
                .set_password_by_email(&email, &hash, &actor, now)
                .await
            {
                Err(switchboard_store::StoreError::NotFound) => {
                    anyhow::bail!("no login with the e-mail {email}")
                }
                other => other?,
            };
            println!("{}  password: {}", user.email, password.expose());
            store.close().await;
            Ok(())
        }
        Command::Apikey {
            command: ApikeyCommand::Create { org, name },
        } => {
            let org_id = OrgId::parse(&org).with_context(|| {
                format!("`{org}` is not an organization id (they look like org_...)")
            })?;
            let store = open_store(&config, false).await?;
            store.migrate().await?;
            let (_, key) = match store.create_api_key(&org_id, &name).await {
                Err(switchboard_store::StoreError::NotFound) => {
                    anyhow::bail!("no organization {org}")
                }
                other => other?,
            };
            println!("{}", key.expose());
            store.close().await;
            Ok(())
        }
        Command::Doctor => Ok(()),
        Command::Secrets { command } => {
            let store = open_store(&config, false).await?;
            store.migrate().await?;
            let result = secrets::run(command, &config, &store).await;
            store.close().await;
            result
        }
        Command::Numbers { command } => {
            let store = open_store(&config, false).await?;
            store.migrate().await?;
            let rest = switchboard_twilio::rest::RestClient::new(&config.twilio_api_url)?
                .with_signalwire_base(config.signalwire_api_url.as_deref());
            let result = numbers::run(command, &store, &rest).await;
            store.close().await;
            result
        }
        Command::Drain { url, wait } => drain::run(&config, url, wait).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config, true).await?;
    let applied = store.migrate().await.context("database migration failed")?;
    tracing::info!(database = store.description(), migrations_applied = ?applied, "database ready");
    if config.public_url.is_none() {
        tracing::warn!("SWITCHBOARD_PUBLIC_URL is not set: Twilio cannot reach this server until it is (run `switchboard doctor`)");
    }
    let bootstrap = store
        .bootstrap(&BootstrapInput {
            org_name: config.first_org_name.clone(),
            admin_email: config.admin_email.clone(),
        })
        .await
        .context("first-start setup failed")?;
    let addr = SocketAddr::new(config.host, config.port);
    if config.twilio_skip_signature {
        tracing::warn!("SWITCHBOARD_TWILIO_SKIP_SIGNATURE is on: Twilio webhooks are NOT verified; anyone can post fake calls (development only)");
    }
    // On OpenAI's endpoint the voice key serves text too, unless a text key is given.
    let on_openai = config.llm_base_url == switchboard_llm::DEFAULT_BASE_URL;
    let llm_key = config
        .llm_api_key
        .clone()
        .or_else(|| on_openai.then(|| config.openai_api_key.clone()).flatten());
    if llm_key.is_none() && on_openai {
        tracing::warn!("no chat model key (SWITCHBOARD_LLM_API_KEY or SWITCHBOARD_OPENAI_API_KEY): texts are stored but agents cannot reply");
    }
    if config.openai_api_key.is_none() {
        tracing::warn!("SWITCHBOARD_OPENAI_API_KEY is not set: incoming calls will hear an apology and hang up");
    }
    let web = WebConfig {
        operator_key: config.operator_key.clone(),
        max_body_bytes: config.max_body_bytes,
        public_url: config.public_url.clone(),
        twilio_skip_signature: config.twilio_skip_signature,
        require_verified_numbers: config.environment == config::Environment::Production,
        twilio_api_url: config.twilio_api_url.clone(),
        retell_api_url: config.retell_api_url.clone(),
        signalwire_api_url: config.signalwire_api_url.clone(),
        voice: switchboard_voice::VoiceConfig {
            realtime_url: config.openai_realtime_url.clone(),
            api_key: config.openai_api_key.clone(),
            shape: config.openai_realtime_shape,
            speech: switchboard_voice::SpeechConfig {
                openai_api_url: config.openai_api_url.clone(),
                deepgram_api_url: config.deepgram_api_url.clone(),
                deepgram_api_key: config.deepgram_api_key.clone(),
                elevenlabs_api_url: config.elevenlabs_api_url.clone(),
                elevenlabs_api_key: config.elevenlabs_api_key.clone(),
                offline: config.offline.clone(),
            },
            ..switchboard_voice::VoiceConfig::default()
        },
        messaging: switchboard_messaging::MessagingConfig {
            reply_budget: config.messaging_reply_budget,
            max_replies_per_org: config.max_text_replies_per_org,
            ..switchboard_messaging::MessagingConfig::default()
        },
        llm: switchboard_web::LlmConfig {
            base_url: config.llm_base_url.clone(),
            api_key: llm_key,
            model: config.llm_model.clone(),
            timeout: config.llm_timeout,
        },
        jobs: switchboard_jobs::JobsConfig {
            allow_private_targets: config.webhooks_allow_private,
            smtp: config.smtp_url.clone().zip(config.smtp_from.clone()),
            email_analysis_wait: config.email_analysis_wait,
            analysis_model: Some(config.llm_model.clone()),
            webhook_concurrency: config.webhook_concurrency,
            endpoint_concurrency: config.webhook_endpoint_concurrency,
            ..switchboard_jobs::JobsConfig::default()
        },
        dashboard: switchboard_web::dashboard::DashboardConfig {
            // Browsers drop Secure cookies sent over plain http, except on localhost.
            secure_cookies: config
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
            trusted_proxies: config.trusted_proxies.clone(),
            ..Default::default()
        },
        clock: switchboard_domain::Clock::system(),
        drain_timeout: config.drain_timeout,
        instance_lease: config.instance_lease,
        tools_allow_private: config.tools_allow_private,
        limits: switchboard_web::security::Limits {
            max_calls_per_org: config.max_concurrent_calls_per_org,
            max_websockets: config.max_websockets,
            max_inflight_requests: config.max_inflight_requests,
            api_rate: config.api_rate,
            ..Default::default()
        },
    };
    if config.tools_allow_private {
        tracing::warn!("SWITCHBOARD_TOOLS_ALLOW_PRIVATE is on: custom tools may target loopback and private addresses");
    }
    if config.webhooks_allow_private {
        tracing::warn!("SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE is on: webhooks may target loopback and private addresses");
    }
    if config.smtp_url.is_none() {
        tracing::info!("SWITCHBOARD_SMTP_URL is not set: call e-mails are recorded as not sent");
    }
    // Before anything is printed: a signal from here on drains the server.
    let stop = shutdown_signal();
    let app = Application::build(addr, store.clone(), &web)
        .await
        .with_context(|| format!("cannot listen on {addr} (is another process using the port? set --port or SWITCHBOARD_PORT)"))?;
    let bound = app.local_addr()?;
    let base = match &config.public_url {
        Some(u) => u.clone(),
        None => format!("http://localhost:{}", bound.port()),
    };
    if let Some(b) = bootstrap {
        print_first_start(&b, &base);
    }
    tracing::info!(address = %bound, public_url = %base, "listening");
    app.run_until_stopped(stop, config.shutdown_timeout).await?;
    tracing::info!("drained and stopped; closing the database");
    store.close().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

fn print_first_start(b: &switchboard_store::Bootstrap, base: &str) {
    let line = "=".repeat(78);
    println!("{line}");
    println!(" Switchboard is set up. These secrets are shown ONCE; store them now.");
    println!();
    println!("   Organization      {} ({})", b.org.name, b.org.id);
    println!(
        "   Admin login       {}  password: {}",
        b.admin.email,
        b.admin_password.expose()
    );
    println!("   API key (org)     {}", b.org_key.expose());
    println!("   Operator key      {}", b.operator_key.expose());
    println!();
    println!("   Dashboard         {base}/   (sign in with the admin login)");
    println!("   API               {base}/api/v1");
    println!("   OpenAPI           {base}/api/v1/openapi.json");
    println!("   Health            {base}/healthz   {base}/readyz   {base}/metrics");
    println!();
    println!(
        "   Try it:  curl -H 'Authorization: Bearer {}' {base}/api/v1/agents",
        b.org_key.expose()
    );
    println!("{line}");
}

/// Listens for SIGINT and SIGTERM from this call on and answers a future that ends at the
/// first. Called before the first-start credentials are printed: a supervisor or a script that
/// stops the server as soon as it reads them must get a drain, not the default action of a
/// signal nobody listens for yet (which kills the process on the spot).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>, name: &'static str| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for {name}");
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                _ = wait(int, "SIGINT") => tracing::info!("received SIGINT; shutting down"),
                _ = wait(term, "SIGTERM") => tracing::info!("received SIGTERM; shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("received Ctrl-C; shutting down");
    }
}
