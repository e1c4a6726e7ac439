//! The `ringtrail` command-line tool.
fn main() {}
