//! `switchboard secrets`: the master keys that encrypt stored credentials (Twilio auth
//! tokens, signing secrets, tool and MCP credentials, OAuth tokens).

use crate::config::{self, Config};
use anyhow::bail;
use clap::Subcommand;
use switchboard_store::{Reseal, SecretsReport, Store};

/// The `secrets` subcommands.
#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Print a fresh master key (base64 of 32 random bytes) for SWITCHBOARD_MASTER_KEY.
    NewKey,
    /// Show where the master key comes from and how the stored secrets are encrypted.
    Status,
    /// Re-encrypt every stored secret with a new master key, with no downtime. With a key
    /// file (the default data/master.key, or SWITCHBOARD_MASTER_KEY_FILE) a new key is put
    /// first in the file (older keys stay below it, decrypting) and running servers pick it
    /// up by themselves. With SWITCHBOARD_MASTER_KEY, set the new key there and the old one
    /// in SWITCHBOARD_PREVIOUS_MASTER_KEYS first; this re-encrypts under the new one.
    Rotate {
        /// Re-encrypt under the key file's current first key instead of adding a new one.
        #[arg(long)]
        no_new_key: bool,
    },
}

fn print_report(report: &SecretsReport, current: &str) {
    let total: u64 = report.by_key.values().sum::<u64>() + report.plaintext;
    println!("stored secrets: {total}");
    for (id, n) in &report.by_key {
        let tag = if id == current { " (current)" } else { "" };
        println!("  key {id}{tag}: {n}");
    }
    if report.plaintext > 0 {
        println!("  in clear: {}", report.plaintext);
    }
}

/// Runs a subcommand against an open, migrated store.
pub async fn run(command: SecretsCommand, config: &Config, store: &Store) -> anyhow::Result<()> {
    let keyring = store.keyring();
    match command {
        SecretsCommand::NewKey => {
            println!("{}", switchboard_store::keyring::new_key());
            Ok(())
        }
        SecretsCommand::Status => {
            println!(
                "master key: {} (current key {}; can decrypt {})",
                config::describe_keys(config),
                keyring.current_id(),
                keyring.ids().join(", ")
            );
            let report = store.reseal_secrets(Reseal::Count).await?;
            print_report(&report, &keyring.current_id());
            Ok(())
        }
        SecretsCommand::Rotate { no_new_key } => {
            if keyring.file().is_some() && !no_new_key {
                let id = keyring.rotate_file()?;
                println!(
                    "new master key {id} written first in {} (older keys kept below it)",
                    config::describe_keys(config)
                );
            }
            let report = store.reseal_secrets(Reseal::All).await?;
            if report.resealed > 0 {
                // The old ciphertexts must not stay readable in freed pages, in case the
                // old key is why this rotation happens.
                store.forget_freed_pages().await?;
            }
            println!(
                "re-encrypted {} secrets with key {}",
                report.resealed,
                keyring.current_id()
            );
            print_report(&report, &keyring.current_id());
            if report.unreadable > 0 {
                bail!(
                    "{} secrets could not be decrypted and were left as they are (see the log): \
                     add the key that sealed them to SWITCHBOARD_PREVIOUS_MASTER_KEYS and rotate again",
                    report.unreadable
                );
            }
            let old = report.by_key.keys().any(|id| *id != keyring.current_id());
            if !old {
                println!("no secret uses an older key any more: once every instance has read the new key, the older ones can be removed");
            }
            Ok(())
        }
    }
}
