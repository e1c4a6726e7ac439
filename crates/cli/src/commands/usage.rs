//! `ringtrail usage`: the tokens and cost of AI calls in a time window,
//! per model, user, agent or day (`ringtrail::read::usage` does the
//! reading, in one query; `docs/usage.md` has the rules). The format,
//! with figures made up for the example:
//!
//! ```text
//! $ ringtrail usage --since 7d --prices prices.toml
//! MODEL            CALLS  INPUT TOKENS  OUTPUT TOKENS  CACHED TOKENS  COST (USD)
//! gpt-4o          12,040    31,804,112      2,104,330      8,120,000  110.198530
//! claude-sonnet    3,100     9,120,448        610,002              0   36.511374
//! (none)             410             0              0              0    0.000000
//! total           15,550    40,924,560      2,714,332      8,120,000  146.709904
//!
//! by model, 2026-11-26T10:00:00.000000Z → 2026-12-03T10:00:00.000000Z, prices from prices.toml
//! ```
//!
//! Every figure is exact: integers with thousands separators, the cost
//! in USD with six decimals (whole micro-USD, exactly). Group names are
//! stored text, escaped like every other output, and cut to
//! [`MAX_GROUP_CHARS`] characters in the table (`--json` has them
//! whole).
//!
//! With `--database-url` once per shard of a sharded cluster, the groups
//! of every shard in one tally: the same output as one database holding
//! every shard's rows (`ringtrail::read::cluster::usage`).
//!
//! `--json` prints one object per group and line, and nothing else:
//! `{"group", "calls", "input_tokens", "output_tokens", "cached_tokens",
//! "cost_micro_usd"}`.
//!
//! Exit codes: 0 done, 1 the database could not be reached or queried
//! (or its URL does not parse), 2 invalid arguments (a bad `--by`, a
//! price file that cannot be read or parsed). Every failure is one line
//! on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use ringtrail::read::usage::{thousands, usd};
use ringtrail::read::usage::{By, Group, Prices, UsageQuery};
use ringtrail::time::{micros, rfc3339_micros, When};

use super::db::{finish_output, runtime, DatabaseArgs, Shards};
use super::output::{cut, escaped, put_line, ColorArgs, Printer, BOLD};
use super::{CliResult, Failure};

/// The longest group name the table shows; longer ones are cut with an
/// ellipsis (`--json` has them whole).
pub const MAX_GROUP_CHARS: usize = 64;

/// Flags of `ringtrail usage`.
#[derive(clap::Args)]
pub struct UsageArgs {
    /// Start of the window (a point counts by its own time): a duration
    /// back from now (30m, 24h, 7d) or an RFC 3339 timestamp.
    #[arg(long, default_value = "24h")]
    since: When,
    /// End of the window (exclusive): an RFC 3339 timestamp, or a
    /// duration back from now. Default: now.
    #[arg(long)]
    until: Option<When>,
    /// Group by model, user, agent or day (UTC).
    #[arg(long, default_value = "model", value_parser = parse_by)]
    by: By,
    /// A TOML price file: USD per million input, output and cached
    /// tokens per model (docs/usage.md). Tokens of traces whose result
    /// gives `cost.micro_usd` are never priced; without a price file the
    /// others cost 0.
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Print one JSON object per group and line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    color: ColorArgs,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// `--by`'s parser: clap reports a bad value as a usage error (exit 2).
fn parse_by(s: &str) -> Result<By, String> {
    s.parse::<By>()
        .map_err(|_| format!("{s:?} is not a grouping: expected model, user, agent or day"))
}

/// Runs `ringtrail usage`.
pub fn run(args: UsageArgs) -> CliResult {
    let now = SystemTime::now();
    let since = args.since.at(now);
    let until = args.until.map_or(now, |u| u.at(now));
    if since >= until {
        return Err(Failure::usage(format!(
            "--since ({}) is not before --until ({})",
            rfc3339_micros(micros(since)),
            rfc3339_micros(micros(until)),
        ))
        .into());
    }
    // The price file first: a mistake there is the user's, and found
    // before any database is opened.
    let prices = match &args.prices {
        Some(path) => Prices::load(path).map_err(Failure::usage)?,
        None => Prices::default(),
    };
    let query = UsageQuery {
        since,
        until,
        by: args.by,
    };
    let configs = args.database.configs()?;
    let groups = runtime()?.block_on(async {
        let shards = Shards::connect(&configs).await?;
        ringtrail::read::cluster::usage(&shards.all(), &query, &prices)
            .await
            .map_err(|e| shards.failure("cannot read the usage", e))
    })?;
    let mut out = Printer::stdout(!args.json && args.color.enabled());
    if args.json {
        for group in &groups {
            out.json(&group.to_json().to_string());
        }
    } else {
        write_table(&mut out, &query, &groups);
        let prices_note = match &args.prices {
            Some(path) => format!("prices from {}", path.display()),
            None => "no --prices: only costs given by results count".to_owned(),
        };
        put_line!(
            out,
            "by {}, {} → {}, {}",
            query.by,
            rfc3339_micros(micros(since)),
            rfc3339_micros(micros(until)),
            prices_note,
        );
    }
    finish_output(out.finish())
}

/// The groups as a table with a total line, a blank line after it.
fn write_table<W: Write>(out: &mut Printer<W>, query: &UsageQuery, groups: &[Group]) {
    let header = [
        match query.by {
            By::Model => "MODEL",
            By::User => "USER",
            By::Agent => "AGENT",
            By::Day => "DAY",
        },
        "CALLS",
        "INPUT TOKENS",
        "OUTPUT TOKENS",
        "CACHED TOKENS",
        "COST (USD)",
    ];
    let mut total = [0i128; 5];
    let mut cells: Vec<[String; 6]> = groups
        .iter()
        .map(|g| {
            let figures = [
                g.calls,
                g.input_tokens,
                g.output_tokens,
                g.cached_tokens,
                g.cost_micro_usd,
            ];
            for (t, f) in total.iter_mut().zip(figures) {
                *t += i128::from(f);
            }
            [
                // Escaped here so that the widths are those shown.
                escaped(cut(&g.group, MAX_GROUP_CHARS)),
                thousands(figures[0].into()),
                thousands(figures[1].into()),
                thousands(figures[2].into()),
                thousands(figures[3].into()),
                usd(figures[4].into()),
            ]
        })
        .collect();
    cells.push([
        "total".to_owned(),
        thousands(total[0]),
        thousands(total[1]),
        thousands(total[2]),
        thousands(total[3]),
        usd(total[4]),
    ]);
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header_text = format_row(&header.map(str::to_owned), &widths);
    out.line().styled(header_text, BOLD);
    let last = cells.len() - 1;
    for (i, row) in cells.iter().enumerate() {
        let text = format_row(row, &widths);
        if i == last {
            out.line().styled(text, BOLD);
        } else {
            out.line().put(text);
        }
    }
    out.blank();
}

/// One row of the table: the group left-aligned, the figures right.
fn format_row(row: &[String; 6], widths: &[usize; 6]) -> String {
    let mut text = String::new();
    for (i, (cell, &w)) in row.iter().zip(widths).enumerate() {
        let pad = w.saturating_sub(cell.chars().count());
        if i == 0 {
            text.push_str(cell);
            text.push_str(&" ".repeat(pad));
        } else {
            text.push_str("  ");
            text.push_str(&" ".repeat(pad));
            text.push_str(cell);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::output::tests::{assert_terminal_safe, CSI8, OSC52, RLO};

    #[test]
    fn figures_are_exact() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(31_804_112), "31,804,112");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        assert_eq!(thousands(i64::MAX.into()), "9,223,372,036,854,775,807");
        assert_eq!(usd(0), "0.000000");
        assert_eq!(usd(3_507), "0.003507");
        assert_eq!(usd(1_234_567_890), "1,234.567890");
        assert_eq!(usd(-5), "-0.000005");
    }

    #[test]
    fn stored_text_cannot_attack_the_reader() {
        let now = SystemTime::now();
        let query = UsageQuery {
            since: now,
            until: now,
            by: By::Model,
        };
        let groups: Vec<Group> = [OSC52, CSI8, RLO, "<script>alert(1)</script>"]
            .into_iter()
            .map(|name| Group {
                group: name.to_owned(),
                calls: 1,
                ..Group::default()
            })
            .collect();
        for color in [false, true] {
            let mut out = Vec::new();
            let mut p = Printer::new(&mut out, color);
            write_table(&mut p, &query, &groups);
            p.finish().unwrap();
            assert_terminal_safe(&out, color);
        }
    }
}
