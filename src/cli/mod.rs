//! The `ringtrail` binary's subcommands, one module each, and what they
//! share: the result type and how a failure is reported.

pub mod demo;

use std::error::Error;

/// What a subcommand returns. Its error is reported by [`report_error`].
pub type CliResult = Result<(), Box<dyn Error + Send + Sync>>;

/// Prints `error` on one line of stderr: `ringtrail: ` followed by the error
/// and its whole [`source`](Error::source) chain
/// ([`ringtrail::error::chain`]).
pub fn report_error(error: &(dyn Error + 'static)) {
    eprintln!("ringtrail: {}", ringtrail::error::chain(error));
}

#[cfg(test)]
mod tests {
    use ringtrail::error::chain;

    #[test]
    fn subcommand_errors_print_on_one_line() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no initdb");
        let error = ringtrail::embedded::ClusterError::Io(io);
        assert_eq!(
            chain(&error),
            "throwaway PostgreSQL cluster: i/o error: no initdb"
        );
        let boxed: Box<dyn std::error::Error + Send + Sync> = "row count 1 != 2".into();
        assert_eq!(chain(&*boxed), "row count 1 != 2");
    }
}
