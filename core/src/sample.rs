//! Seeded sample data (feature `gen`): recipients, visitor links and audience files with the
//! proportions the benchmarks and the demo need. The generator is a seeded PRNG
//! (SplitMix64), not randomness from the environment: the same seed gives the same bytes on
//! every platform.
//!
//! Shape of an audience of `n` lines against `n` visitor links (the benchmark):
//! recipients `1..=n`, one visitor id each; 2% of the visitor ids are shared by a second
//! recipient (a later `last_seen`); 70% of the audience's ids are linked visitor ids, the rest
//! unknown; each line is in 1–3 of 50 segments (`1000..1050`); 0.5% of the lines carry a
//! malformed id.

use crate::format::input;
use crate::id::VisitorId;
use crate::normalize::Profile;
use crate::recipients::{Column, ColumnData, RecipientIds, RecipientsTable, Strings};
use crate::time::{Date, Timestamp};

/// A small, fast, seeded PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// A random visitor id.
    pub fn visitor(&mut self) -> VisitorId {
        let value = (u128::from(self.next_u64()) << 64 | u128::from(self.next_u64()))
            % (VisitorId::MAX.as_u128() + 1);
        VisitorId::from_u128(value).expect("reduced below the maximum")
    }
}

/// Number of segments the audience draws from.
pub const SEGMENTS: u64 = 50;
/// First segment id.
pub const FIRST_SEGMENT: u64 = 1000;

/// Generated visitor-id sample: links CSV and an outbound audience file.
#[derive(Debug, Clone)]
pub struct VisitorSample {
    /// `recipient_id,visitor_id,last_seen` CSV.
    pub links_csv: Vec<u8>,
    /// Audience Manager outbound body (`<id> <segs>` lines).
    pub audience: Vec<u8>,
    /// Number of links written.
    pub links: u64,
}

/// Visitor ids of recipient `1..=n`, deterministic from `seed`.
fn visitor_ids(seed: u64, n: u64) -> Vec<VisitorId> {
    let mut rng = Rng::new(seed ^ 0x0005_EED0_F1D5);
    (0..n).map(|_| rng.visitor()).collect()
}

/// `n` links (plus 2% shared) and an `n`-line outbound audience.
pub fn visitor_sample(seed: u64, n: u64) -> VisitorSample {
    let ids = visitor_ids(seed, n);
    let mut rng = Rng::new(seed);
    let mut links_csv = Vec::with_capacity(n as usize * 64);
    links_csv.extend_from_slice(b"recipient_id,visitor_id,last_seen\n");
    let mut links = 0;
    for (i, id) in ids.iter().enumerate() {
        let recipient = i as u64 + 1;
        let seen = 1_700_000_000 + rng.below(10_000_000);
        push_link(&mut links_csv, recipient, id, seen);
        links += 1;
        if rng.chance(20) {
            // A shared device: another recipient seen on it later.
            let other = rng.below(n) + 1;
            if other != recipient {
                push_link(&mut links_csv, other, id, seen + 1 + rng.below(1000));
                links += 1;
            }
        }
    }

    let mut audience = Vec::with_capacity(n as usize * 52);
    for _ in 0..n {
        if rng.chance(5) {
            audience.extend_from_slice(b"1234567890123456789012345678901234567X");
        } else if rng.chance(700) {
            audience.extend_from_slice(&ids[rng.below(n) as usize].to_digits());
        } else {
            audience.extend_from_slice(&rng.visitor().to_digits());
        }
        audience.push(b' ');
        let count = 1 + rng.below(3);
        let mut chosen = [u64::MAX; 3];
        for k in 0..count as usize {
            let mut segment = FIRST_SEGMENT + rng.below(SEGMENTS);
            while chosen[..k].contains(&segment) {
                segment = FIRST_SEGMENT + rng.below(SEGMENTS);
            }
            chosen[k] = segment;
            if k > 0 {
                audience.push(b',');
            }
            push_u64(&mut audience, segment);
        }
        audience.push(b'\n');
    }
    VisitorSample {
        links_csv,
        audience,
        links,
    }
}

fn push_link(out: &mut Vec<u8>, recipient: u64, id: &VisitorId, seen: u64) {
    push_u64(out, recipient);
    out.push(b',');
    out.extend_from_slice(&id.to_digits());
    out.push(b',');
    push_u64(out, seen);
    out.push(b'\n');
}

/// Appends `n` in decimal without allocating.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Generated declared-id sample: recipients with emails and an audience of hashed emails.
#[derive(Debug, Clone)]
pub struct EmailSample {
    /// `id,email,opted_out` CSV.
    pub recipients_csv: Vec<u8>,
    /// Experience Platform export: `email_sha256,status` CSV.
    pub audience: Vec<u8>,
}

/// `n` recipients with emails (1% opted out, 1% without email) and an export of `n` hashed
/// emails (70% of them recipients', 0.5% malformed).
pub fn email_sample(seed: u64, n: u64) -> EmailSample {
    let mut rng = Rng::new(seed);
    let mut recipients_csv = Vec::with_capacity(n as usize * 40);
    recipients_csv.extend_from_slice(b"id,email,opted_out\n");
    let email = |i: u64| format!("User.{i}@Example{}.com", i % 97);
    for i in 1..=n {
        let address = if rng.chance(10) {
            String::new()
        } else {
            email(i)
        };
        let opted = if rng.chance(10) { "true" } else { "false" };
        recipients_csv.extend_from_slice(format!("{i},{address},{opted}\n").as_bytes());
    }
    let mut audience = Vec::with_capacity(n as usize * 80);
    audience.extend_from_slice(b"email_sha256,status\n");
    for i in 0..n {
        if rng.chance(5) {
            audience.extend_from_slice(b"not-a-digest");
        } else {
            let who = if rng.chance(700) {
                rng.below(n) + 1
            } else {
                n + 1 + i
            };
            let digest = Profile::AdobeV1
                .normalize_email(&email(who))
                .expect("generated emails are valid")
                .digest;
            audience.extend_from_slice(digest.to_hex().as_bytes());
        }
        audience.extend_from_slice(if rng.chance(50) {
            b",exited\n"
        } else {
            b",realized\n"
        });
    }
    EmailSample {
        recipients_csv,
        audience,
    }
}

/// `n` recipients as a typed table for rule benchmarks, ids `1..=n`: `country` (text, 8
/// codes, 1% null), `age` (integer 10..=89, 2% null), `score` (float), `vip` (true/false),
/// `signup` (date, 2015–2025), `last_order` (date-time in the two years before 2026-01-01, 10%
/// null) and `email` (text, a third at `@example.com`, some upper-case, 1% null).
pub fn recipients_table(seed: u64, n: u64) -> RecipientsTable {
    const COUNTRIES: [&str; 8] = ["NL", "BE", "DE", "FR", "GB", "ES", "IT", "US"];
    const DOMAINS: [&str; 3] = ["@example.com", "@example.org", "@EXAMPLE.COM"];
    // 2026-01-01 and 2015-01-01 in days since 1970-01-01.
    const END_DAYS: i64 = 20_454;
    const SIGNUP_DAYS: i64 = 16_436;
    const DAY_MICROS: i64 = 86_400_000_000;
    let mut rng = Rng::new(seed);
    let n_rows = n as usize;
    let mut country = Strings::new();
    let mut email = Strings::new();
    let mut age = Vec::with_capacity(n_rows);
    let mut score = Vec::with_capacity(n_rows);
    let mut vip = Vec::with_capacity(n_rows);
    let mut signup = Vec::with_capacity(n_rows);
    let mut last_order = Vec::with_capacity(n_rows);
    let mut address = String::new();
    for i in 1..=n {
        let c = COUNTRIES[rng.below(8) as usize];
        country.push((!rng.chance(10)).then_some(c));
        age.push((!rng.chance(20)).then(|| 10 + rng.below(80) as i64));
        score.push(Some(rng.below(10_000) as f64 / 100.0));
        vip.push(Some(rng.chance(50)));
        signup.push(Date::from_days(
            (SIGNUP_DAYS + rng.below(4_000) as i64) as i32,
        ));
        let micros = (END_DAYS - 730) * DAY_MICROS + rng.below(730 * DAY_MICROS as u64) as i64;
        last_order.push(
            (!rng.chance(100))
                .then(|| Timestamp::from_unix_micros(micros))
                .flatten(),
        );
        address.clear();
        address.push_str("user.");
        address.push_str(&i.to_string());
        address.push_str(DOMAINS[rng.below(3) as usize]);
        email.push((!rng.chance(10)).then_some(address.as_str()));
    }
    let column = |name: &str, data| Column {
        name: name.to_owned(),
        data,
    };
    RecipientsTable {
        ids: RecipientIds::Int((1..=n as i64).collect()),
        columns: vec![
            column("country", ColumnData::String(country)),
            column("age", ColumnData::Int(age)),
            column("score", ColumnData::Float(score)),
            column("vip", ColumnData::Bool(vip)),
            column("signup", ColumnData::Date(signup)),
            column("last_order", ColumnData::DateTime(last_order)),
            column("email", ColumnData::String(email)),
        ],
    }
}

/// A coherent demo data set: recipients, their visitor links, an Audience Manager outbound
/// file and an Experience Platform export about the same people.
#[derive(Debug, Clone)]
pub struct DemoSample {
    /// Recipients CSV: the [`recipients_table`] columns with messy emails (spaces, capitals, a
    /// few invalid), a `phone` column (national and international forms) and `opted_out`.
    pub recipients_csv: Vec<u8>,
    /// Visitor links CSV of those recipients ([`visitor_sample`]).
    pub links_csv: Vec<u8>,
    /// Audience Manager outbound body ([`visitor_sample`]).
    pub outbound: Vec<u8>,
    /// Experience Platform export: `email_sha256,status` — SHA-256 (adobe-v1) of 60% of the
    /// recipients' emails plus strangers, 2% `exited`, 0.5% malformed.
    pub aep_export: Vec<u8>,
}

/// `n` recipients and the files around them, deterministic from `seed`.
pub fn demo(seed: u64, n: u64) -> DemoSample {
    let visitors = visitor_sample(seed, n);
    let mut table = recipients_table(seed, n);
    let mut rng = Rng::new(seed ^ 0xDE40);
    let mut phones = Strings::new();
    let mut opted_out = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let local = 600_000_000 + (i * 7_919) % 100_000_000;
        let phone = match rng.below(4) {
            0 => format!("+31 {local}"),
            1 => format!("0{local}"),
            2 => format!("+31-{}-{}", local / 10_000, local % 10_000),
            _ => String::new(),
        };
        phones.push((!phone.is_empty()).then_some(phone.as_str()));
        opted_out.push(Some(rng.chance(30)));
    }
    // Messy emails: some with surrounding spaces or in capitals, a few invalid.
    let mut emails_for_export = Vec::new();
    if let Some(column) = table.columns.iter_mut().find(|c| c.name == "email")
        && let ColumnData::String(values) = &column.data
    {
        let mut messy = Strings::new();
        for value in values.iter() {
            let text = value.map(|v| match rng.below(20) {
                0 => format!("  {v} "),
                1 => v.to_uppercase(),
                2 => v.replace('@', " at "),
                _ => v.to_owned(),
            });
            if let Some(t) = &text {
                emails_for_export.push(t.clone());
            }
            messy.push(text.as_deref());
        }
        column.data = ColumnData::String(messy);
    }
    table.columns.push(Column {
        name: "phone".to_owned(),
        data: ColumnData::String(phones),
    });
    table.columns.push(Column {
        name: "opted_out".to_owned(),
        data: ColumnData::Bool(opted_out),
    });
    let mut aep_export = b"email_sha256,status\n".to_vec();
    let mut stranger = 0u64;
    for email in &emails_for_export {
        if !rng.chance(600) {
            continue;
        }
        let address = if rng.chance(200) {
            stranger += 1;
            format!("stranger.{stranger}@example.net")
        } else {
            email.clone()
        };
        if rng.chance(5) {
            aep_export.extend_from_slice(b"not-a-digest");
        } else if let Ok(normalized) = Profile::AdobeV1.normalize_email(&address) {
            aep_export.extend_from_slice(normalized.digest.to_hex().as_bytes());
        } else {
            continue;
        }
        aep_export.extend_from_slice(if rng.chance(20) {
            b",exited\n"
        } else {
            b",realized\n"
        });
    }
    DemoSample {
        recipients_csv: crate::format::recipients::write(&table),
        links_csv: visitors.links_csv,
        outbound: visitors.audience,
        aep_export,
    }
}

/// Gzips sample bytes (deterministic), for benchmarks that read compressed input.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    input::gzip(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_expected_shape() {
        let a = visitor_sample(7, 2000);
        let b = visitor_sample(7, 2000);
        assert_eq!(
            (a.links_csv.clone(), a.audience.clone()),
            (b.links_csv, b.audience)
        );
        assert_ne!(visitor_sample(8, 2000).audience, a.audience);
        let lines = a
            .audience
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert_eq!(lines, 2000);
        // About 2% shared links.
        assert!((2000..2100).contains(&a.links), "{}", a.links);
        let malformed = a.audience.windows(2).filter(|w| w == b"7X").count();
        assert!((1..=30).contains(&malformed), "{malformed}");
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut rng = Rng::new(1);
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            buckets[rng.below(10) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (9_500..10_500).contains(&b)),
            "{buckets:?}"
        );
    }

    #[test]
    fn demo_files_read_and_hang_together() {
        use crate::format::{ReadOptions, links, recipients};
        let demo = demo(3, 500);
        assert_eq!(demo.recipients_csv, super::demo(3, 500).recipients_csv);
        let read = recipients::read("r.csv", &demo.recipients_csv, ReadOptions::default()).unwrap();
        assert_eq!((read.table.len(), read.bad.len()), (500, 0));
        for name in ["email", "phone", "opted_out", "country"] {
            assert!(read.table.column(name).is_some(), "{name}");
        }
        let links = links::read("l.csv", &demo.links_csv, ReadOptions::default()).unwrap();
        assert!(links.bad.is_empty() && links.links.len() >= 500);
        let lines = demo
            .aep_export
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert!(lines > 200, "{lines}");
    }
}
