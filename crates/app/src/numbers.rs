//! `switchboard numbers`: the operator's view of number verification. `verify` asks Twilio,
//! with each organization's own credentials, whether its numbers are in its account;
//! `verify --manual` records the operator's word for a number no carrier API can prove (a
//! WhatsApp sender outside the account, such as Twilio's sandbox).

use anyhow::Context;
use clap::Subcommand;
use switchboard_domain::entities::OwnedNumber;
use switchboard_domain::ids::OrgId;
use switchboard_domain::values::{NumberChannel, NumberVerification, PhoneNumber};
use switchboard_domain::Timestamp;
use switchboard_store::{NumberCheck, Store};
use switchboard_twilio::rest::RestClient;

#[derive(Subcommand)]
pub enum NumbersCommand {
    /// Check numbers with Twilio and print each one's state (every organization's, or one's).
    Verify {
        /// Only this organization (`org_...`).
        #[arg(long)]
        org: Option<String>,
        /// Only numbers not verified yet.
        #[arg(long)]
        pending: bool,
        /// Record the operator's verification of one number instead of asking Twilio (needs
        /// --org, --number and --channel). Only for numbers no carrier API can prove.
        #[arg(long, requires_all = ["org", "number", "channel"])]
        manual: bool,
        /// The number (E.164), with --manual.
        #[arg(long)]
        number: Option<String>,
        /// `voice`, `sms` or `whatsapp`, with --manual.
        #[arg(long)]
        channel: Option<String>,
    },
}

pub async fn run(command: NumbersCommand, store: &Store, rest: &RestClient) -> anyhow::Result<()> {
    let NumbersCommand::Verify {
        org,
        pending,
        manual,
        number,
        channel,
    } = command;
    let org = org
        .map(|o| {
            OrgId::parse(&o).with_context(|| {
                format!("`{o}` is not an organization id (they look like org_...)")
            })
        })
        .transpose()?;
    if manual {
        let (Some(org), Some(number), Some(channel)) = (org, number, channel) else {
            anyhow::bail!("--manual needs --org, --number and --channel");
        };
        return verify_manually(store, &org, &number, &channel).await;
    }
    let orgs = match org {
        Some(o) => vec![o],
        None => store.all_org_ids().await?,
    };
    let (mut verified, mut waiting) = (0, 0);
    for org in orgs {
        for n in store.all_numbers(&org).await? {
            if pending && n.verification == NumberVerification::Verified {
                continue;
            }
            let n = switchboard_web::numbers::verify(store, rest, &org, &n.id).await?;
            print_number(&org, &n);
            match n.verification {
                NumberVerification::Verified => verified += 1,
                NumberVerification::PendingVerification => waiting += 1,
            }
        }
    }
    println!("{verified} verified, {waiting} pending verification");
    Ok(())
}

async fn verify_manually(
    store: &Store,
    org: &OrgId,
    number: &str,
    channel: &str,
) -> anyhow::Result<()> {
    let number = PhoneNumber::parse(number).map_err(|e| anyhow::anyhow!("--number {e}"))?;
    let channel = NumberChannel::parse(channel)
        .with_context(|| format!("--channel must be one of {}", NumberChannel::expected()))?;
    let Some(n) = store
        .all_numbers(org)
        .await?
        .into_iter()
        .find(|n| n.number == number && n.channel == channel)
    else {
        anyhow::bail!(
            "organization {org} has no {channel} number {}",
            number.as_str()
        );
    };
    let now = Timestamp::now();
    let n = store
        .record_number_check(
            org,
            &n.id,
            NumberCheck::Verified(format!(
                "verified manually by the operator (switchboard numbers verify --manual) on {}",
                now.to_rfc3339()
            )),
            now,
        )
        .await?;
    print_number(org, &n);
    if n.verification != NumberVerification::Verified {
        anyhow::bail!(
            "not verified: {}",
            n.verification_message.unwrap_or_default()
        );
    }
    Ok(())
}

fn print_number(org: &OrgId, n: &OwnedNumber) {
    println!(
        "{org}  {}  {}  {}{}",
        n.number.as_str(),
        n.channel,
        n.verification,
        n.verification_message
            .as_deref()
            .map(|m| format!("  ({m})"))
            .unwrap_or_default()
    );
}
