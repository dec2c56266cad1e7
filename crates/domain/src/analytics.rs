//! Analytics figures: what a range of days adds up to, per day and per agent or number, and
//! the latency histogram that gives percentiles without keeping every turn.

use std::collections::BTreeMap;

/// Latencies in buckets: 1 ms wide below one second, 10 ms wide up to ten seconds, and one
/// bucket beyond. Percentiles are exact below a second and within 10 ms above, in a fixed
/// 7.6 KB whatever the number of turns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyHistogram {
    counts: Vec<u32>,
    n: u64,
}

const FINE: i64 = 1000;
const COARSE_END: i64 = 10_000;
const BUCKETS: usize = 1000 + 900 + 1;

fn bucket(ms: i64) -> usize {
    let ms = ms.max(0);
    if ms < FINE {
        ms as usize
    } else if ms < COARSE_END {
        (FINE + (ms - FINE) / 10) as usize
    } else {
        BUCKETS - 1
    }
}

fn value(b: usize) -> i64 {
    let b = b as i64;
    if b < FINE {
        b
    } else {
        FINE + (b - FINE) * 10
    }
}

impl LatencyHistogram {
    /// Counts one turn.
    pub fn add(&mut self, ms: i64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        let b = bucket(ms);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.n += 1;
    }

    /// Adds another histogram's turns.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.n == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.n += other.n;
    }

    /// Turns counted.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether no turn was counted.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The `p` percentile (0..=1), by the same rank as the call page's: the element at
    /// `round((n - 1) * p)` of the sorted turns.
    pub fn percentile(&self, p: f64) -> Option<i64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((self.n as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as u64;
        let mut seen = 0u64;
        for (b, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen > rank {
                return Some(value(b));
            }
        }
        None
    }
}

/// What a set of calls and messages adds up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Calls started.
    pub calls: i64,
    /// Calls by disposition (`in-progress` for calls not over).
    pub by_disposition: BTreeMap<String, i64>,
    /// Seconds of calls.
    pub seconds: i64,
    /// Calls judged by the analysis (a call where nobody spoke is not).
    pub analysed: i64,
    /// Of those, successful.
    pub successes: i64,
    /// Per-turn latencies.
    pub latency: LatencyHistogram,
    /// Text messages received.
    pub messages_in: i64,
    /// Text messages sent (by the agent or staff).
    pub messages_out: i64,
}

impl Figures {
    /// Success rate in percent, when any call was judged.
    pub fn success_rate(&self) -> Option<f64> {
        (self.analysed > 0).then(|| 100.0 * self.successes as f64 / self.analysed as f64)
    }

    /// Minutes of calls.
    pub fn minutes(&self) -> f64 {
        self.seconds as f64 / 60.0
    }

    /// Adds another set's figures.
    pub fn merge(&mut self, o: &Figures) {
        self.calls += o.calls;
        for (k, v) in &o.by_disposition {
            *self.by_disposition.entry(k.clone()).or_default() += v;
        }
        self.seconds += o.seconds;
        self.analysed += o.analysed;
        self.successes += o.successes;
        self.latency.merge(&o.latency);
        self.messages_in += o.messages_in;
        self.messages_out += o.messages_out;
    }
}

/// A range's figures: per day (in the organization's days), per agent, per number, total.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analytics {
    /// One entry per day of the range.
    pub days: Vec<Figures>,
    /// By agent id (`None`: calls without an agent).
    pub agents: BTreeMap<Option<String>, Figures>,
    /// By the organization's number on the call.
    pub numbers: BTreeMap<String, Figures>,
}

impl Analytics {
    /// The whole range.
    pub fn total(&self) -> Figures {
        let mut t = Figures::default();
        for d in &self.days {
            t.merge(d);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_the_sorted_rank_below_a_second_and_within_ten_ms_above() {
        let mut h = LatencyHistogram::default();
        let mut all: Vec<i64> = (0..997).map(|i| (i * 7919) % 2500).collect();
        all.push(-5);
        all.push(60_000);
        for v in &all {
            h.add(*v);
        }
        all.sort_unstable();
        for p in [0.0, 0.25, 0.5, 0.95, 0.99, 1.0] {
            let exact = all[((all.len() as f64 - 1.0) * p).round() as usize].clamp(0, 10_000);
            let got = h.percentile(p).expect("some");
            if exact < 1000 {
                assert_eq!(got, exact, "p{p}");
            } else {
                assert!((exact - got).abs() < 10, "p{p}: {got} vs {exact}");
            }
        }
        assert_eq!(LatencyHistogram::default().percentile(0.5), None);
        let mut m = LatencyHistogram::default();
        m.merge(&h);
        m.merge(&h);
        assert_eq!(m.len(), 2 * h.len());
        assert_eq!(m.percentile(0.5), h.percentile(0.5));
    }

    #[test]
    fn figures_add_up() {
        let mut a = Figures {
            calls: 2,
            analysed: 2,
            successes: 1,
            seconds: 90,
            ..Figures::default()
        };
        a.by_disposition.insert("completed".into(), 2);
        let mut b = a.clone();
        b.merge(&a);
        assert_eq!(b.calls, 4);
        assert_eq!(b.by_disposition["completed"], 4);
        assert_eq!(b.success_rate(), Some(50.0));
        assert_eq!(b.minutes(), 3.0);
        assert_eq!(Figures::default().success_rate(), None);
    }
}
