//! Knowledge: an organization's documents, cut into passages that full-text search can rank
//! and a model can read whole. The rules here are pure: what a source may hold, how its text
//! is cut (by Markdown headings, then paragraphs, then sentences), and how a question becomes
//! search terms, so both databases search for exactly the same words.

use crate::ids::KnowledgeSourceId;
use crate::values::{check_len, require_text};
use crate::{Timestamp, ValidationError};
use serde::{Deserialize, Serialize};

/// Sources one organization may keep.
pub const MAX_SOURCES: i64 = 500;
/// The most text one source may hold, in characters (after extraction from a file).
pub const MAX_CONTENT_CHARS: usize = 1_000_000;
/// The largest file accepted for upload.
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// Sources one agent may answer from.
pub const MAX_AGENT_SOURCES: usize = 50;
/// A passage grows paragraph by paragraph up to about this many characters...
const CHUNK_TARGET: usize = 900;
/// ...and a single paragraph or sentence longer than this is cut.
const CHUNK_MAX: usize = 1_400;
/// Search terms kept from one question.
const MAX_TERMS: usize = 12;

/// What kind of text a source holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KnowledgeFormat {
    /// Plain text: paragraphs separated by blank lines.
    Text,
    /// Markdown: headings (`#` to `######`) name the passages under them.
    Markdown,
    /// Text extracted from an uploaded PDF.
    Pdf,
}

impl KnowledgeFormat {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KnowledgeFormat::Text => "text",
            KnowledgeFormat::Markdown => "markdown",
            KnowledgeFormat::Pdf => "pdf",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<KnowledgeFormat> {
        match s {
            "text" => Some(KnowledgeFormat::Text),
            "markdown" => Some(KnowledgeFormat::Markdown),
            "pdf" => Some(KnowledgeFormat::Pdf),
            _ => None,
        }
    }

    /// The format of an uploaded file, from its name: `.txt`, `.md` (or `.markdown`), `.pdf`.
    pub fn of_file_name(name: &str) -> Option<KnowledgeFormat> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "txt" | "text" => Some(KnowledgeFormat::Text),
            "md" | "markdown" => Some(KnowledgeFormat::Markdown),
            "pdf" => Some(KnowledgeFormat::Pdf),
            _ => None,
        }
    }
}

/// Where a source's index stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KnowledgeStatus {
    /// Its passages are being (re)built; searches use the previous ones until then.
    Indexing,
    /// Searchable.
    Ready,
    /// Indexing failed (`error` says why).
    Failed,
}

impl KnowledgeStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KnowledgeStatus::Indexing => "indexing",
            KnowledgeStatus::Ready => "ready",
            KnowledgeStatus::Failed => "failed",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<KnowledgeStatus> {
        match s {
            "indexing" => Some(KnowledgeStatus::Indexing),
            "ready" => Some(KnowledgeStatus::Ready),
            "failed" => Some(KnowledgeStatus::Failed),
            _ => None,
        }
    }
}

/// A knowledge source as stored and listed (its text is read separately).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KnowledgeSource {
    /// Id (`kns_...`).
    pub id: KnowledgeSourceId,
    /// Name shown to people and given to the model with each passage.
    pub name: String,
    /// `text`, `markdown` or `pdf`.
    pub format: KnowledgeFormat,
    /// The uploaded file's name, for uploads.
    pub file_name: Option<String>,
    /// Characters of text.
    pub chars: i64,
    /// Increases with every change of the text.
    pub version: i64,
    /// `indexing`, `ready` or `failed`.
    pub status: KnowledgeStatus,
    /// Why indexing failed.
    pub error: Option<String>,
    /// Passages in the index.
    pub chunks: i64,
    /// Who added it: `user:<id>` (the dashboard, or the assistant for that person) or
    /// `api_key:<id>`.
    pub created_by: String,
    /// Added.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Last indexed.
    pub indexed_at: Option<Timestamp>,
}

/// The body of `POST /api/v1/knowledge/sources`: text or Markdown given inline (files go to
/// the upload route).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKnowledgeSource {
    /// Name (1 to 200 characters).
    pub name: String,
    /// `text` (default) or `markdown`.
    #[serde(default)]
    pub format: Option<KnowledgeFormat>,
    /// The text (at most 1,000,000 characters).
    pub content: String,
}

/// The body of `PATCH /api/v1/knowledge/sources/{id}`: a new name, new text, or both. New
/// text is indexed again.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgePatch {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New text (replaces it as a whole).
    #[serde(default)]
    pub content: Option<String>,
}

/// A source's text ready to store: normalised and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceText {
    /// The text.
    pub content: String,
    /// Its length in characters.
    pub chars: i64,
}

/// Checks a source's name.
pub fn validate_name(name: &str) -> Result<String, ValidationError> {
    require_text("name", name, 200)?;
    Ok(name.trim().to_owned())
}

/// Normalises and checks a source's text: line ends become `\n`, page breaks blank lines,
/// other control characters go; it must hold words and fit [`MAX_CONTENT_CHARS`].
pub fn source_text(field: &str, raw: &str) -> Result<SourceText, ValidationError> {
    let mut content = String::with_capacity(raw.len());
    let mut chars = 0usize;
    let mut prev_cr = false;
    for c in raw.chars() {
        let out = match c {
            '\r' => Some('\n'),
            '\n' if prev_cr => None,
            '\u{c}' => {
                content.push('\n');
                chars += 1;
                Some('\n')
            }
            '\n' | '\t' => Some(c),
            c if c.is_control() => None,
            c => Some(c),
        };
        prev_cr = c == '\r';
        if let Some(o) = out {
            content.push(o);
            chars += 1;
        }
    }
    if !content.chars().any(char::is_alphanumeric) {
        return Err(ValidationError::new(field, "holds no text"));
    }
    check_len(field, &content, MAX_CONTENT_CHARS)?;
    Ok(SourceText {
        content,
        chars: i64::try_from(chars).unwrap_or(i64::MAX),
    })
}

/// One passage of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Position in the source, from 0.
    pub ordinal: i64,
    /// The Markdown headings it sits under, outermost first (`Prices > Colour`).
    pub heading: Option<String>,
    /// The passage.
    pub text: String,
}

/// Cuts a source's text into passages of about [`CHUNK_TARGET`] characters: Markdown sections
/// (each headed by its heading path), then paragraphs packed together, then sentences of a
/// paragraph too long for one passage, then words of a sentence too long for one.
pub fn chunk(content: &str, format: KnowledgeFormat) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for (heading, body) in sections(content, format) {
        let mut current = String::new();
        let flush = |current: &mut String, out: &mut Vec<Chunk>| {
            let text = current.trim();
            if !text.is_empty() {
                out.push(Chunk {
                    ordinal: i64::try_from(out.len()).unwrap_or(i64::MAX),
                    heading: heading.clone(),
                    text: text.to_owned(),
                });
            }
            current.clear();
        };
        for para in paragraphs(&body) {
            for piece in pieces(&para) {
                let len = current.chars().count() + piece.chars().count();
                if !current.is_empty() && len > CHUNK_TARGET {
                    flush(&mut current, &mut out);
                }
                if !current.is_empty() {
                    current.push_str("\n\n");
                }
                current.push_str(&piece);
            }
        }
        flush(&mut current, &mut out);
    }
    out
}

/// Markdown sections with their heading path; other formats are one untitled section.
fn sections(content: &str, format: KnowledgeFormat) -> Vec<(Option<String>, String)> {
    if format != KnowledgeFormat::Markdown {
        return vec![(None, content.to_owned())];
    }
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let mut in_code = false;
    let heading_of = |path: &[(usize, String)]| {
        (!path.is_empty()).then(|| {
            path.iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" > ")
        })
    };
    for line in content.split('\n') {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        let level = line.bytes().take_while(|b| *b == b'#').count();
        let is_heading = !in_code
            && (1..=6).contains(&level)
            && line[level..].starts_with(' ')
            && !line[level..].trim().is_empty();
        if is_heading {
            if !body.trim().is_empty() {
                out.push((heading_of(&path), std::mem::take(&mut body)));
            }
            body.clear();
            path.retain(|(l, _)| *l < level);
            let title = line[level..].trim().trim_end_matches('#').trim().to_owned();
            path.push((level, title));
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    if !body.trim().is_empty() {
        out.push((heading_of(&path), body));
    }
    out
}

/// Paragraphs: runs of non-blank lines, with their inner whitespace collapsed.
fn paragraphs(body: &str) -> Vec<String> {
    body.split("\n\n")
        .flat_map(|block| block.split("\n \n"))
        .map(|p| {
            p.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// A paragraph in pieces of at most [`CHUNK_MAX`] characters: whole when it fits, else its
/// sentences packed up to [`CHUNK_TARGET`], and a sentence too long cut between words.
fn pieces(para: &str) -> Vec<String> {
    if para.chars().count() <= CHUNK_MAX {
        return vec![para.to_owned()];
    }
    let mut out = Vec::new();
    let mut current = String::new();
    for sentence in sentences(para) {
        for part in by_words(&sentence) {
            if !current.is_empty() && current.chars().count() + part.chars().count() > CHUNK_TARGET
            {
                out.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(&part);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Sentences: text up to `.`, `?` or `!` followed by whitespace, or a line end.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            if !current.trim().is_empty() {
                out.push(current.trim().to_owned());
            }
            current.clear();
            continue;
        }
        current.push(c);
        if matches!(c, '.' | '?' | '!') && chars.peek().is_some_and(|n| n.is_whitespace()) {
            out.push(current.trim().to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// A sentence in parts of at most [`CHUNK_MAX`] characters, cut between words (or inside a
/// word longer than that).
fn by_words(sentence: &str) -> Vec<String> {
    if sentence.chars().count() <= CHUNK_MAX {
        return vec![sentence.to_owned()];
    }
    let mut out = Vec::new();
    let mut current = String::new();
    for word in sentence.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > CHUNK_MAX {
            let cut: String = word.chars().take(CHUNK_MAX).collect();
            word = word.chars().skip(CHUNK_MAX).collect();
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            out.push(cut);
        }
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > CHUNK_MAX {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Words that carry no meaning in a question; dropped before searching so both databases
/// (SQLite keeps stop words, PostgreSQL's `english` drops its own) search the same terms.
const STOP_WORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did",
    "do", "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it",
    "its", "me", "my", "of", "on", "or", "our", "please", "should", "so", "than", "that", "the",
    "their", "them", "then", "there", "these", "they", "this", "to", "us", "was", "we", "were",
    "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// A question as search terms: lower-case words of letters and digits, stop words and
/// single letters dropped, each once, at most [`MAX_TERMS`]. Empty when nothing is left.
pub fn search_terms(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        let w = word.to_lowercase();
        let single_letter = w.chars().count() < 2 && !w.chars().all(|c| c.is_ascii_digit());
        if w.is_empty() || single_letter || STOP_WORDS.contains(&w.as_str()) || out.contains(&w) {
            continue;
        }
        out.push(w);
        if out.len() == MAX_TERMS {
            break;
        }
    }
    out
}

/// One passage a search found.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KnowledgeHit {
    /// The source.
    pub source_id: KnowledgeSourceId,
    /// The source's name.
    pub source: String,
    /// The headings it sits under.
    pub heading: Option<String>,
    /// The passage.
    pub text: String,
    /// Its position in the source.
    pub ordinal: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_cut_by_heading_with_its_path() {
        let md = "# Salon\nWelcome.\n\n## Prices\nCut: 40 EUR.\n\nColour: 80 EUR.\n\n## Hours\nMon-Fri 9-18.\n\n### Holidays\nClosed on 25 December.\n\n```\n# not a heading\n```\n";
        let c = chunk(md, KnowledgeFormat::Markdown);
        let got: Vec<(Option<&str>, &str)> = c
            .iter()
            .map(|c| (c.heading.as_deref(), c.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("Salon"), "Welcome."),
                (Some("Salon > Prices"), "Cut: 40 EUR.\n\nColour: 80 EUR."),
                (Some("Salon > Hours"), "Mon-Fri 9-18."),
                (
                    Some("Salon > Hours > Holidays"),
                    "Closed on 25 December.\n\n```\n# not a heading\n```"
                ),
            ]
        );
        assert_eq!(
            c.iter().map(|c| c.ordinal).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn long_text_is_packed_and_cut_below_the_maximum() {
        let para = "word ".repeat(150);
        let text = [para.trim(); 12].join("\n\n");
        let sentence = "x".repeat(5_000);
        let all = format!("{text}\n\n{sentence}. Tail sentence.");
        let c = chunk(&all, KnowledgeFormat::Text);
        assert!(
            c.iter().all(|c| c.text.chars().count() <= CHUNK_MAX),
            "{c:?}"
        );
        assert!(c.iter().all(|c| c.heading.is_none()));
        // Every word is kept, in order.
        let joined: String = c
            .iter()
            .map(|c| c.text.replace(char::is_whitespace, ""))
            .collect();
        assert_eq!(joined, all.replace(char::is_whitespace, ""));
        // Paragraphs of 749 characters are not packed two to a passage over the target.
        assert!(c.iter().take(12).all(|c| c.text.chars().count() < 1_000));
    }

    #[test]
    fn text_is_normalised_and_must_hold_words() {
        let t = source_text("content", "a\r\nb\rc\u{c}d\u{0}e").expect("text");
        assert_eq!(t.content, "a\nb\nc\n\nde");
        assert_eq!(t.chars, 9);
        assert!(source_text("content", " \n\t-- ").is_err());
        assert!(source_text("content", &"a".repeat(MAX_CONTENT_CHARS + 1)).is_err());
    }

    #[test]
    fn questions_become_the_same_terms_everywhere() {
        assert_eq!(
            search_terms("How much is a COLOUR, and do you take card? 3 pm"),
            vec!["much", "colour", "take", "card", "3", "pm"]
        );
        assert!(search_terms("what is it?").is_empty());
        assert_eq!(search_terms("Café crème café"), vec!["café", "crème"]);
        assert_eq!(
            search_terms("w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13").len(),
            MAX_TERMS
        );
        // Quotes and operators never reach a query language.
        assert_eq!(search_terms("\"NEAR(\" OR * -x:y"), vec!["near"]);
    }

    #[test]
    fn formats_come_from_file_names() {
        assert_eq!(
            KnowledgeFormat::of_file_name("Prices.PDF"),
            Some(KnowledgeFormat::Pdf)
        );
        assert_eq!(
            KnowledgeFormat::of_file_name("a.md"),
            Some(KnowledgeFormat::Markdown)
        );
        assert_eq!(
            KnowledgeFormat::of_file_name("notes.txt"),
            Some(KnowledgeFormat::Text)
        );
        assert_eq!(KnowledgeFormat::of_file_name("x.docx"), None);
        assert_eq!(KnowledgeFormat::of_file_name("noext"), None);
    }
}
