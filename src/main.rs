//! The `minnow` command line. The contract (names, flags, JSON keys, exit codes) is
//! `shared/design/CLI.md`: 0 on success, 1 with a one-paragraph error for a problem the user can
//! fix, 2 for a usage error (clap's own exit code).

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One paragraph: the error and its causes, joined.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::from(1)
        }
    }
}
