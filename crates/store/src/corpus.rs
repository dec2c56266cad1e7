//! A knowledge corpus for tests and benchmarks: a hair salon's documents with questions and
//! the passage each must find first (on both backends), and filler text in bulk.

use crate::{NewSource, Store, StoreError};
use switchboard_domain::ids::{KnowledgeSourceId, OrgId};
use switchboard_domain::knowledge::{chunk, source_text, KnowledgeFormat};
use switchboard_domain::Timestamp;

/// The salon's handbook (Markdown).
pub const HANDBOOK: &str = "# Studio Lumen\n\
Studio Lumen is a hair salon in the old town, run by Dana and Priya since 2014.\n\n\
## Prices\n\
### Cuts\n\
A women's cut and blow-dry costs 58 euros; a men's cut costs 34 euros. Children under 12 pay 22 euros.\n\n\
### Colour\n\
A full colour treatment costs 95 euros, highlights from 120 euros. Every colour treatment needs a \
patch test at least 48 hours before, free of charge.\n\n\
## Opening hours\n\
We are open Tuesday to Friday from 9:00 to 19:00 and Saturday from 8:00 to 14:00. We are closed \
on Sunday and Monday, and on public holidays.\n\n\
## Cancellation policy\n\
Please cancel or move an appointment at least 24 hours ahead. A late cancellation or a missed \
appointment is charged a fee of 50 percent of the booked service.\n\n\
## Payment\n\
We accept cash, debit cards and all major credit cards, and gift vouchers bought at the studio.\n";

/// How to get there (plain text).
pub const DIRECTIONS: &str = "Studio Lumen is at Kirchgasse 7, two minutes on foot from the \
Marktplatz tram stop (lines 3 and 5).\n\n\
Parking: the Rathaus garage on Bergstrasse is the closest car park; the first hour is free with \
a ticket stamped at the salon. Street parking nearby is limited to 30 minutes.\n\n\
The entrance is step-free, and the salon has a wheelchair-accessible washroom.";

/// Another organization's price list, with the same words: never found by the salon.
pub const FOREIGN: &str = "## Colour\nAt Barber Nord a colour treatment costs 40 euros and \
parking is free. We are open on Sunday.";

/// Questions and a piece of the passage each must find first.
pub const QUESTIONS: &[(&str, &str)] = &[
    (
        "How much does a colour treatment cost?",
        "A full colour treatment costs 95 euros",
    ),
    ("Are you open on Sundays?", "We are open Tuesday to Friday"),
    ("Where can I park my car?", "Parking: the Rathaus garage"),
    (
        "Is there a fee if I cancel late?",
        "A late cancellation or a missed",
    ),
    ("Can I pay by credit card?", "We accept cash, debit cards"),
    ("Which tram goes to the salon?", "Marktplatz tram stop"),
    (
        "What does a men's haircut cost?",
        "a men's cut costs 34 euros",
    ),
];

/// Adds a source and indexes it at once (as the index job would).
pub async fn add_indexed(
    store: &Store,
    org: &OrgId,
    name: &str,
    format: KnowledgeFormat,
    text: &str,
) -> Result<KnowledgeSourceId, StoreError> {
    let source = store
        .create_knowledge_source(
            org,
            NewSource {
                name: name.to_owned(),
                format,
                file_name: None,
                text: source_text("content", text)?,
                created_by: "test".to_owned(),
            },
            Timestamp::now(),
        )
        .await?;
    let chunks = chunk(text, format);
    store
        .store_knowledge_chunks(org, &source.id, source.version, &chunks, Timestamp::now())
        .await?;
    Ok(source.id)
}

const FILLER_WORDS: &[&str] = &[
    "appointment",
    "booking",
    "service",
    "stylist",
    "treatment",
    "customer",
    "voucher",
    "season",
    "product",
    "shampoo",
    "conditioner",
    "scissors",
    "mirror",
    "towel",
    "window",
    "music",
    "coffee",
    "magazine",
    "schedule",
    "holiday",
    "morning",
    "evening",
    "weekend",
    "friend",
    "family",
    "wedding",
    "party",
    "event",
    "training",
    "course",
    "team",
    "manager",
    "owner",
    "supplier",
    "delivery",
    "invoice",
    "receipt",
    "account",
    "newsletter",
    "website",
    "review",
    "photo",
    "style",
    "trend",
    "length",
    "volume",
    "texture",
    "curl",
    "wave",
    "fringe",
    "layer",
    "trim",
    "wash",
    "dry",
    "brush",
    "comb",
    "spray",
    "gel",
    "wax",
    "oil",
    "mask",
    "serum",
    "scalp",
    "root",
    "tip",
    "shine",
    "care",
    "routine",
    "advice",
    "question",
    "answer",
    "note",
    "reminder",
    "message",
    "call",
    "visit",
    "street",
    "garden",
    "river",
    "bridge",
    "market",
    "station",
    "school",
    "library",
    "museum",
    "theatre",
    "cinema",
    "bakery",
    "pharmacy",
];

/// Adds text for `n` filler passages, in sources of 1,000 paragraphs queued for indexing
/// like any other source. Each paragraph is words from a fixed vocabulary with a skewed
/// distribution, 950 to 962 characters long: past the passage target, so the index job makes
/// one passage of each.
pub async fn add_filler(store: &Store, org: &OrgId, n: usize) -> Result<(), StoreError> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let len = FILLER_WORDS.len() as u64;
    let mut done = 0usize;
    let mut source_no = 0usize;
    while done < n {
        let count = (n - done).min(1_000);
        let mut text = String::new();
        for _ in 0..count {
            let mut para = String::new();
            while para.len() < 950 {
                // Squared: early words are far more common than late ones.
                let r = next() % 10_000;
                let i = usize::try_from(r * r * len / 100_000_000)
                    .unwrap_or(0)
                    .min(FILLER_WORDS.len() - 1);
                if !para.is_empty() {
                    para.push(' ');
                }
                para.push_str(FILLER_WORDS[i]);
            }
            text.push_str(&para);
            text.push_str(".\n\n");
        }
        source_no += 1;
        store
            .create_knowledge_source(
                org,
                NewSource {
                    name: format!("Archive {source_no}"),
                    format: KnowledgeFormat::Text,
                    file_name: None,
                    text: source_text("content", &text)?,
                    created_by: "bench".to_owned(),
                },
                Timestamp::now(),
            )
            .await?;
        done += count;
    }
    Ok(())
}
