//! Text for speech: cutting a streamed answer into sentences (speech starts on the first
//! complete one) and cutting an answer back to the words the caller heard.

/// Longest run of text sent to speech without a sentence end (a long clause is cut at a
/// comma or a space).
const MAX_CLAUSE: usize = 200;

/// Collects streamed text and hands out complete sentences.
#[derive(Debug, Default)]
pub struct Sentences {
    buf: String,
}

impl Sentences {
    /// Adds text; returns the sentences it completed.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let rest = self.buf.split_off(end);
            let sentence = std::mem::replace(&mut self.buf, rest);
            if !sentence.trim().is_empty() {
                out.push(sentence);
            }
        }
        out
    }

    /// What is left at the end of the answer.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        (!rest.trim().is_empty()).then_some(rest)
    }

    /// Where the first complete sentence ends (after its punctuation and the space after
    /// it), if one is complete.
    fn boundary(&self) -> Option<usize> {
        let b = self.buf.as_bytes();
        for (i, c) in self.buf.char_indices() {
            let next = b.get(i + c.len_utf8()).copied();
            match c {
                // A sentence ends at `.`, `!`, `?` (or `:`/`;`) followed by white space; a
                // decimal point ("9.30") does not.
                '.' | '!' | '?' | ';' | ':' if next.is_some_and(|n| n.is_ascii_whitespace()) => {
                    return Some(i + c.len_utf8() + 1);
                }
                '\n' => return Some(i + 1),
                _ => {}
            }
        }
        if self.buf.len() > MAX_CLAUSE {
            let cut = self.buf[..MAX_CLAUSE]
                .rfind(", ")
                .map(|i| i + 2)
                .or_else(|| self.buf[..MAX_CLAUSE].rfind(' ').map(|i| i + 1))?;
            return Some(cut);
        }
        None
    }
}

/// The words of `text` within its first `chars` characters: a word cut in the middle was
/// not heard.
pub fn heard_words(text: &str, chars: usize) -> String {
    let total = text.chars().count();
    if chars >= total {
        return text.trim().to_owned();
    }
    let end = text
        .char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i);
    let head = &text[..end];
    let whole = if text[end..].starts_with(char::is_whitespace) {
        head
    } else {
        head.rfind(char::is_whitespace).map_or("", |i| &head[..i])
    };
    whole.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_come_out_as_they_complete() {
        let mut s = Sentences::default();
        assert!(s.push("Sure, we open at 9.30 to").is_empty());
        assert_eq!(
            s.push("day. And clo"),
            vec!["Sure, we open at 9.30 today. "]
        );
        assert_eq!(s.push("se at five!\nBye"), vec!["And close at five!\n"]);
        assert_eq!(s.finish().as_deref(), Some("Bye"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn a_long_clause_is_cut_at_a_comma() {
        let mut s = Sentences::default();
        let long = format!(
            "{}, and then {}",
            "word ".repeat(30).trim(),
            "more ".repeat(20)
        );
        let out = s.push(&long);
        assert_eq!(out.len(), 1);
        assert!(out[0].ends_with(", "), "{:?}", out[0]);
    }

    #[test]
    fn only_whole_heard_words_are_kept() {
        let t = "Our opening hours are nine to five.";
        assert_eq!(heard_words(t, 0), "");
        assert_eq!(heard_words(t, 6), "Our");
        assert_eq!(heard_words(t, 3), "Our");
        assert_eq!(heard_words(t, 14), "Our opening");
        assert_eq!(heard_words(t, 200), t);
    }
}
