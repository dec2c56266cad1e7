//! A small SMTP server (RFC 5321, no TLS) that accepts mail on loopback and keeps it, plus a
//! MIME reader that finds the text and HTML parts of a multipart message.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers and body, dot-unstuffed).
    pub data: String,
}

#[derive(Default)]
struct Shared {
    mails: Mutex<Vec<Mail>>,
    /// Answer the end of DATA with a temporary failure this many more times.
    fail_next: Mutex<u32>,
    notify: tokio::sync::Notify,
    /// Mailboxes answered `550` at `RCPT TO` (a permanent failure, as for an unknown user).
    unknown: Mutex<Vec<String>>,
}

/// The running server.
#[derive(Clone)]
pub struct FakeSmtp {
    /// `smtp://127.0.0.1:port?tls=none`.
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeSmtp {
    /// Starts on a free loopback port.
    pub async fn start() -> FakeSmtp {
        let shared = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = shared.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = session(sock, s).await;
                });
            }
        });
        FakeSmtp {
            url: format!("smtp://127.0.0.1:{port}?tls=none"),
            shared,
        }
    }

    /// Answer `451` at the end of the next `n` messages (a temporary failure).
    pub fn fail_next(&self, n: u32) {
        *self.shared.fail_next.lock().unwrap() = n;
    }

    /// Answers `550 5.1.1` to `RCPT TO:<address>` from now on, as a server does for a mailbox
    /// that does not exist.
    pub fn reject_recipient(&self, address: &str) {
        self.shared
            .unknown
            .lock()
            .unwrap()
            .push(address.to_ascii_lowercase());
    }

    /// Messages accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.shared.mails.lock().unwrap().clone()
    }

    /// Waits until `n` messages arrived (up to `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: std::time::Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            let got = self.mails();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

async fn session(sock: tokio::net::TcpStream, s: Arc<Shared>) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 fake-smtp.test ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            w.write_all(
                b"250-fake-smtp.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n",
            )
            .await?;
        } else if upper.starts_with("HELO") {
            w.write_all(b"250 fake-smtp.test\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            from = addr(&cmd[10..]);
            to.clear();
            w.write_all(b"250 2.1.0 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = addr(&cmd[8..]);
            if s.unknown
                .lock()
                .unwrap()
                .contains(&rcpt.to_ascii_lowercase())
            {
                w.write_all(b"550 5.1.1 No such user here\r\n").await?;
            } else {
                to.push(rcpt);
                w.write_all(b"250 2.1.5 OK\r\n").await?;
            }
        } else if upper == "DATA" {
            w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                // Dot-unstuffing (RFC 5321 4.5.2).
                let l = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(l);
            }
            let fail = {
                let mut f = s.fail_next.lock().unwrap();
                if *f > 0 {
                    *f -= 1;
                    true
                } else {
                    false
                }
            };
            if fail {
                w.write_all(b"451 4.3.0 Temporary failure, try again\r\n")
                    .await?;
            } else {
                s.mails.lock().unwrap().push(Mail {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                s.notify.notify_waiters();
                w.write_all(b"250 2.0.0 Queued\r\n").await?;
            }
        } else if upper == "RSET" || upper == "NOOP" {
            w.write_all(b"250 OK\r\n").await?;
        } else if upper == "QUIT" {
            w.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            w.write_all(b"502 5.5.2 Command not recognized\r\n").await?;
        }
    }
}

fn addr(s: &str) -> String {
    let s = s.trim();
    let s = s.split_whitespace().next().unwrap_or_default();
    s.trim_start_matches('<').trim_end_matches('>').to_owned()
}

/// A MIME part: its content type and its decoded body.
#[derive(Debug, Clone)]
pub struct Part {
    /// `text/plain; charset=utf-8`, ...
    pub content_type: String,
    /// The body after transfer decoding.
    pub body: String,
}

/// Splits headers from body; header names lowercased, folded lines joined.
fn headers_and_body(raw: &str) -> (Vec<(String, String)>, String) {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in head.lines() {
        if l.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(l.trim());
            }
        } else if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (headers, body.to_owned())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A top-level header of a message (decoded only as far as `=?utf-8?...?=` words go: not).
pub fn mail_header(data: &str, name: &str) -> Option<String> {
    let (h, _) = headers_and_body(data);
    header(&h, &name.to_ascii_lowercase()).map(str::to_owned)
}

fn decode_qp(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if i + 1 < b.len() && b[i + 1] == b'\n' {
                i += 2;
                continue;
            }
            if i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every leaf part of a (possibly nested) multipart message, transfer-decoded.
pub fn parts(data: &str) -> Vec<Part> {
    let (h, body) = headers_and_body(data);
    let ctype = header(&h, "content-type")
        .unwrap_or("text/plain")
        .to_owned();
    if ctype.to_ascii_lowercase().starts_with("multipart/") {
        let boundary = ctype
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned();
        let delim = format!("--{boundary}");
        let mut out = Vec::new();
        for chunk in body.split(&delim).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.strip_prefix('\n').unwrap_or(chunk);
            out.extend(parts(chunk));
        }
        return out;
    }
    let enc = header(&h, "content-transfer-encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    let decoded = match enc.as_str() {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            String::from_utf8_lossy(&STANDARD.decode(compact).unwrap_or_default()).into_owned()
        }
        "quoted-printable" => decode_qp(&body),
        _ => body,
    };
    vec![Part {
        content_type: ctype,
        body: decoded,
    }]
}
