//! `ringtrail verify`: checks the tamper evidence:
//! every batch's rows against the digest its ledger row committed, the
//! hash chain's links, and the signed checkpoints (`ringtrail::read::verify`
//! does the work, in constant memory).
//!
//! ```text
//! ringtrail verify --checkpoints /var/lib/app/checkpoints --since 24h
//! ringtrail verify --public-key 'ringtrail+1a2b3c4d+AX…' --json | jq .code
//! ```
//!
//! - `--checkpoints FILE`: the checkpoint file the writer appends to
//!   (`Checkpoints::file`); each note's signature is checked and the
//!   database must still hold its head at its seq. This is what catches a
//!   truncated tail or a chain recomputed without the key.
//! - `--public-key KEY`: the verifier key, as its text
//!   (`name+id+base64`) or the path of a file holding it (the `.pub`
//!   beside the key). Without it, with `--checkpoints`, the key is this
//!   user's default one, the `.pub` of `ringtrail::chain::key::default_key_path`
//!   (`$XDG_DATA_HOME/ringtrail/checkpoint.key.pub`, else
//!   `~/.local/share/ringtrail/checkpoint.key.pub`: an error when there is
//!   none), never a file beside the checkpoints, which whoever can replace
//!   the checkpoint file could replace too; without either, each row of
//!   `ringtrail.checkpoints` is checked against the `public_key` stored
//!   in it, which is weaker: whoever can rewrite that table can replace
//!   the key too (the human output says so).
//! - `--since 2h` or an RFC 3339 instant: only batches whose `last_ts` is
//!   at or after it get their rows checked; links are walked over the
//!   whole chain.
//!
//! # Output
//!
//! Human (the default), on stdout: one line per finding,
//!
//! ```text
//! row_changed chain=0190f5a2-… seq=12 batch=0190f5a3-…: the 64 rows do not hash to the committed digest
//! verified 120 batches, 7680 rows in 1 chain: 1 finding
//! ```
//!
//! then the summary line, `verified N batches, M rows in K chains: clean`
//! or `…: F findings`. `--json`: one JSON object per finding on stdout,
//! `{"code", "chain", "seq", "batch_id", "detail"}` (`seq` and
//! `batch_id` null when the finding has none), and nothing else: no
//! summary object; the exit code says whether it verified. A progress
//! bar is drawn on stderr only when stderr is a terminal.
//!
//! # A sharded cluster
//!
//! With `--database-url` once per shard, every shard's chains are
//! checked in turn (`ringtrail::read::cluster::verify`): each finding is
//! prefixed `shard N: ` (`"shard": N` first in `--json`; N is the
//! shard's index, 0-based, in the order of the flags: a URL is never
//! printed, it may hold a password), the summary line adds up the
//! shards' counts, and the line on stderr names the shards with
//! findings. `--checkpoints` is then given once per shard, in the same
//! order (each shard's writer has its own file), or not at all;
//! `--public-key` holds for every shard.
//!
//! Exit codes: 0 everything verifies; 3 tampering found (one line on
//! stderr says how many findings); 1 an error (the database cannot be
//! reached or queried, a malformed URL, a key or checkpoint file that
//! cannot be read or is not a key); 2 invalid arguments. Every failure
//! is one line on stderr.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ringtrail::chain::finding::Finding;
use ringtrail::chain::key::{default_key_path, public_path, VerifierKey};
use ringtrail::read::verify::{Progress as VerifyProgress, VerifyOptions, VerifySummary};
use ringtrail::time::When;

use super::db::{finish_output, runtime, DatabaseArgs, Shards};
use super::output::{put_line, stderr_is_terminal, Printer, Progress};
use super::{CliResult, Failure, EXIT_RUNTIME, EXIT_TAMPERED, EXIT_USAGE};

/// Flags of `ringtrail verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The checkpoint file the writer appends signed notes to: each is
    /// checked, and the database must still hold its head. With several
    /// --database-url, once per shard, in the same order.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    checkpoints: Vec<PathBuf>,
    /// The verifier key (name+id+base64), or a file holding it. Without
    /// it: with --checkpoints, this user's default key's .pub
    /// (~/.local/share/ringtrail/checkpoint.key.pub); else the key stored
    /// in each ringtrail.checkpoints row (weaker).
    #[arg(long, value_name = "KEY")]
    public_key: Option<String>,
    /// Check the rows of batches ending at or after this (30m, 2h, 7d or
    /// an RFC 3339 instant); links are walked over the whole chain.
    #[arg(long, value_name = "WHEN")]
    since: Option<When>,
    /// One JSON object per finding on stdout, nothing else.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs `ringtrail verify`.
pub fn run(args: VerifyArgs) -> CliResult {
    let configs = args.database.configs()?;
    let cluster = configs.len() > 1;
    if args.checkpoints.len() > 1 && args.checkpoints.len() != configs.len() {
        return Err(Failure::new(
            EXIT_USAGE,
            format!(
                "--checkpoints is given {} times for {} database{}: give it once per \
                 --database-url, in the same order",
                args.checkpoints.len(),
                configs.len(),
                if configs.len() == 1 { "" } else { "s" }
            ),
        )
        .into());
    }
    if cluster && args.checkpoints.len() == 1 {
        return Err(Failure::new(
            EXIT_USAGE,
            format!(
                "--checkpoints is given once for {} databases: each shard's writer has its own \
                 checkpoint file; give it once per --database-url, in the same order",
                configs.len()
            ),
        )
        .into());
    }
    let mut public_key = args.public_key.as_deref().map(read_key).transpose()?;
    let mut files = Vec::with_capacity(args.checkpoints.len());
    for path in &args.checkpoints {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::new(
                EXIT_RUNTIME,
                format!("cannot read the checkpoint file {}: {e}", path.display()),
            )
        })?;
        files.push((path.display().to_string(), text));
    }
    if !files.is_empty() && public_key.is_none() {
        let default = default_key_path().map(|key| public_path(&key));
        let Some(default) = default.filter(|p| p.exists()) else {
            return Err(Failure::new(
                EXIT_RUNTIME,
                "--checkpoints needs --public-key: this user has no default checkpoint key \
                 (~/.local/share/ringtrail/checkpoint.key.pub)",
            )
            .into());
        };
        public_key = Some(read_key_file(&default)?);
    }
    let trusted = public_key.is_some();
    let since = args.since.map(|w| w.at(SystemTime::now()));
    let mut files = files.into_iter();
    let options: Vec<VerifyOptions> = (0..configs.len())
        .map(|_| VerifyOptions {
            since,
            public_key: public_key.clone(),
            checkpoints: files.next(),
        })
        .collect();
    let json = args.json;
    let bar = stderr_is_terminal().then(progress_bar);
    let mut out = Printer::stdout(false);
    // The shards that had a finding, for the line on stderr.
    let mut tampered: Vec<usize> = Vec::new();
    let summary = runtime()?.block_on(async {
        let mut shards = Shards::connect(&configs).await?;
        let found = ringtrail::read::cluster::verify(
            &mut shards.all_mut(),
            &options,
            |shard, f| {
                if !tampered.contains(&shard) {
                    tampered.push(shard);
                }
                match (json, cluster) {
                    (true, false) => out.json(&finding_json(f)),
                    (true, true) => out.json(&shard_finding_json(shard, f)),
                    (false, false) => put_line!(out, "{f}"),
                    (false, true) => put_line!(out, "shard {shard}: {f}"),
                }
            },
            |p| {
                if let Some(bar) = &bar {
                    show(bar, p);
                }
            },
        )
        .await;
        found.map_err(|e| shards.failure("cannot verify", e))
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = summary?;
    if !json {
        if !trusted && summary.checkpoints > 0 {
            put_line!(
                out,
                "note: checkpoint signatures were checked against the public_key stored in \
                 ringtrail.checkpoints; whoever can rewrite that table can replace it \
                 (pass --public-key)"
            );
        }
        put_line!(out, "{}", summary_line(&summary));
    }
    finish_output(out.finish())?;
    if summary.clean() {
        Ok(())
    } else {
        let on = if cluster {
            let list: Vec<String> = tampered.iter().map(usize::to_string).collect();
            format!(
                " on shard{} {}",
                if list.len() == 1 { "" } else { "s" },
                list.join(", ")
            )
        } else {
            String::new()
        };
        Err(Failure::new(
            EXIT_TAMPERED,
            format!(
                "verification failed: {} finding{}{on}",
                summary.findings,
                plural(summary.findings)
            ),
        )
        .into())
    }
}

/// `--public-key`: the key's text, or a file holding it.
fn read_key(arg: &str) -> Result<VerifierKey, Failure> {
    match arg.parse::<VerifierKey>() {
        Ok(key) => Ok(key),
        Err(_) => read_key_file(Path::new(arg)),
    }
}

fn read_key_file(path: &Path) -> Result<VerifierKey, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::new(
            EXIT_RUNTIME,
            format!(
                "--public-key: neither a key nor a readable file {}: {e}",
                path.display()
            ),
        )
    })?;
    text.trim()
        .parse()
        .map_err(|e: ringtrail::chain::key::KeyError| {
            Failure::new(
                EXIT_RUNTIME,
                format!("--public-key: {}: {e}", path.display()),
            )
        })
}

/// One finding as `{"code","chain","seq","batch_id","detail"}`, keys in
/// that order.
pub fn finding_json(f: &Finding) -> String {
    let value = |v: serde_json::Value| v.to_string();
    format!(
        r#"{{"code":{},"chain":{},"seq":{},"batch_id":{},"detail":{}}}"#,
        value(f.code.as_str().into()),
        value(f.chain.to_string().into()),
        value(f.seq.into()),
        value(
            f.batch_id
                .map(|b| ringtrail::chain::link::ChainId(b).to_string())
                .into()
        ),
        value(f.detail.as_str().into()),
    )
}

/// One finding of shard `shard` of a cluster: [`finding_json`] with
/// `"shard"` first.
pub fn shard_finding_json(shard: usize, f: &Finding) -> String {
    format!(r#"{{"shard":{shard},{}"#, &finding_json(f)[1..])
}

/// `verified N batches, M rows in K chains: clean` (or `: F findings`),
/// with, before the colon, how many batches' rows were not checked and
/// why: `(3 batches not checked: 2 ended before --since, 1 lost rows to
/// retention)`.
fn summary_line(s: &VerifySummary) -> String {
    let verdict = if s.clean() {
        "clean".to_owned()
    } else {
        format!("{} finding{}", s.findings, plural(s.findings))
    };
    let skipped = match (s.skipped_since, s.skipped_retention) {
        (0, 0) => String::new(),
        (n, 0) => format!(" ({} not checked: {})", batches(n), ended_before(n)),
        (0, n) => format!(" ({} not checked: {})", batches(n), retained(n)),
        (a, b) => format!(
            " ({} not checked: {}, {})",
            batches(a + b),
            ended_before(a),
            retained(b)
        ),
    };
    format!(
        "verified {}, {} row{} in {} chain{}{skipped}: {verdict}",
        batches(s.batches),
        s.rows,
        plural(s.rows),
        s.chains,
        plural(s.chains),
    )
}

/// `1 batch`, `2 batches`.
fn batches(n: u64) -> String {
    format!("{n} batch{}", if n == 1 { "" } else { "es" })
}

/// Why `n` batches were skipped: `--since`.
fn ended_before(n: u64) -> String {
    if n == 1 {
        "it ended before --since".to_owned()
    } else {
        format!("{n} ended before --since")
    }
}

/// Why `n` batches were skipped: retention.
fn retained(n: u64) -> String {
    if n == 1 {
        "its rows were dropped by retention".to_owned()
    } else {
        format!("{n} had rows dropped by retention")
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn progress_bar() -> Progress {
    Progress::new(
        Some(0),
        "{bar:30} verifying: {human_pos}/{human_len} ledger rows, {msg}, {elapsed}",
        None,
    )
}

fn show(bar: &Progress, p: &VerifyProgress) {
    bar.set_length(p.ledger_rows);
    bar.set_position(p.ledger_done);
    bar.set_message(format_args!("{} rows", p.rows));
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringtrail::chain::finding::FindingCode;
    use ringtrail::chain::link::ChainId;

    #[test]
    fn the_summary_line() {
        let mut s = VerifySummary {
            chains: 1,
            batches: 120,
            rows: 7680,
            ..VerifySummary::default()
        };
        assert_eq!(
            summary_line(&s),
            "verified 120 batches, 7680 rows in 1 chain: clean"
        );
        s.findings = 1;
        s.batches = 1;
        s.chains = 2;
        assert_eq!(
            summary_line(&s),
            "verified 1 batch, 7680 rows in 2 chains: 1 finding"
        );
        s.skipped_since = 1;
        assert_eq!(
            summary_line(&s),
            "verified 1 batch, 7680 rows in 2 chains \
             (1 batch not checked: it ended before --since): 1 finding"
        );
        s.skipped_since = 2;
        s.skipped_retention = 3;
        s.findings = 0;
        assert_eq!(
            summary_line(&s),
            "verified 1 batch, 7680 rows in 2 chains (5 batches not checked: \
             2 ended before --since, 3 had rows dropped by retention): clean"
        );
    }

    #[test]
    fn a_finding_as_json() {
        let f = Finding {
            code: FindingCode::BatchMissing,
            chain: ChainId([1; 16]),
            seq: Some(3),
            batch_id: None,
            detail: "gone \"x\"".into(),
        };
        assert_eq!(
            finding_json(&f),
            r#"{"code":"batch_missing","chain":"01010101-0101-0101-0101-010101010101","seq":3,"batch_id":null,"detail":"gone \"x\""}"#
        );
    }
}
