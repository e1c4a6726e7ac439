//! The `ringtrail` binary's subcommands, one module each, and what they
//! share: the result type and how a failure is reported.

pub mod demo;

use std::error::Error;

/// What a subcommand returns. Its error is reported by [`report_error`].
pub type CliResult = Result<(), Box<dyn Error + Send + Sync>>;

/// Prints `error` on one line of stderr: `ringtrail: ` followed by the error
/// and its whole [`source`](Error::source) chain, joined by `": "`.
pub fn report_error(error: &(dyn Error + 'static)) {
    eprintln!("ringtrail: {}", describe_chain(error));
}

/// `error` and its sources joined by `": "`. A source whose text is already
/// part of what came before is left out: many errors (tokio_postgres's among
/// them) print their cause as part of their own message.
fn describe_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    /// An error with a fixed text and an optional cause.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn chain(texts: &[&'static str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |cause, text| Some(Layer(text, cause.map(Box::new))))
            .unwrap()
    }

    #[test]
    fn the_whole_chain_on_one_line() {
        let error = chain(&["the shared cluster failed", "i/o error", "No such file"]);
        assert_eq!(
            describe_chain(&error),
            "the shared cluster failed: i/o error: No such file"
        );
        assert_eq!(describe_chain(&chain(&["alone"])), "alone");
    }

    #[test]
    fn a_cause_already_printed_is_skipped() {
        // Like tokio_postgres: "db error: ERROR: boom", whose source is the
        // DbError "ERROR: boom".
        let error = chain(&["database error", "db error: ERROR: boom", "ERROR: boom"]);
        assert_eq!(
            describe_chain(&error),
            "database error: db error: ERROR: boom"
        );
    }

    #[test]
    fn real_errors() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no initdb");
        let error = ringtrail::embedded::ClusterError::Io(io);
        assert_eq!(
            describe_chain(&error),
            "throwaway PostgreSQL cluster: i/o error: no initdb"
        );
        let boxed: Box<dyn Error + Send + Sync> = "row count 1 != 2".into();
        assert_eq!(describe_chain(&*boxed), "row count 1 != 2");
    }
}
