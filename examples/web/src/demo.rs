//! The demo's synchronous code: a plain, blocking-style parser over [`BufRead`].
//!
//! It knows nothing about promises or coroutines. In the page it reads a `fetch`
//! response body through [`StreamReader`](crate::promise::StreamReader), whose reads
//! suspend the coroutine until the next chunk arrives.
//!
//! The input is one measurement per line, `station;temperature` with one decimal
//! (the format of the "one billion row challenge"): `Hamburg;12.0`. Temperatures are
//! kept in integer tenths of a degree, so the summary is exact.

use std::collections::BTreeMap;
use std::io::{self, BufRead};

/// Per-station statistics, in tenths of a degree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Station {
    /// Lowest temperature.
    pub min: i32,
    /// Highest temperature.
    pub max: i32,
    /// Sum of all temperatures.
    pub sum: i64,
    /// Number of measurements.
    pub count: u64,
}

impl Station {
    /// The mean in tenths, rounded half away from zero.
    pub fn mean(&self) -> i64 {
        let c = self.count as i64;
        if self.sum >= 0 {
            (2 * self.sum + c) / (2 * c)
        } else {
            (2 * self.sum - c) / (2 * c)
        }
    }
}

/// What [`parse_measurements`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of measurement lines.
    pub rows: u64,
    /// Statistics by station name, in name order.
    pub stations: BTreeMap<String, Station>,
}

/// Parses `station;temperature` lines (empty lines are skipped), calling `every(rows)`
/// after each `interval` rows.
pub fn parse_measurements(
    input: &mut impl BufRead,
    interval: u64,
    mut every: impl FnMut(u64),
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut line = String::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(summary);
        }
        line_no += 1;
        let text = line.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            continue;
        }
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {line_no}: {what}: {text:?}"),
            )
        };
        let (name, temp) = text.split_once(';').ok_or_else(|| bad("no `;`"))?;
        let t = parse_tenths(temp).ok_or_else(|| bad("bad temperature"))?;
        match summary.stations.get_mut(name) {
            Some(s) => {
                s.min = s.min.min(t);
                s.max = s.max.max(t);
                s.sum += i64::from(t);
                s.count += 1;
            }
            None => {
                let s = Station {
                    min: t,
                    max: t,
                    sum: i64::from(t),
                    count: 1,
                };
                summary.stations.insert(name.to_owned(), s);
            }
        }
        summary.rows += 1;
        if interval != 0 && summary.rows % interval == 0 {
            every(summary.rows);
        }
    }
}

/// `-12.3` → `-123`: an optional minus, digits, a point and exactly one digit.
fn parse_tenths(s: &str) -> Option<i32> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = digits.split_once('.')?;
    if whole.is_empty()
        || whole.len() > 3
        || frac.len() != 1
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let v = whole.parse::<i32>().ok()? * 10 + frac.parse::<i32>().ok()?;
    Some(if neg { -v } else { v })
}

/// Tenths as a decimal: `-3` → `-0.3`.
pub fn fmt_tenths(t: i64) -> String {
    let sign = if t < 0 { "-" } else { "" };
    format!("{sign}{}.{}", t.unsigned_abs() / 10, t.unsigned_abs() % 10)
}

/// The summary as text, one station a line: `name min/mean/max (count)`.
pub fn render(summary: &Summary) -> String {
    let mut out = format!(
        "{} measurements from {} stations\n",
        summary.rows,
        summary.stations.len()
    );
    for (name, s) in &summary.stations {
        out.push_str(&format!(
            "{name} {}/{}/{} ({})\n",
            fmt_tenths(i64::from(s.min)),
            fmt_tenths(s.mean()),
            fmt_tenths(i64::from(s.max)),
            s.count
        ));
    }
    out
}
