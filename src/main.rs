//! The `makescope` binary: parse arguments, run one subcommand, turn the result into an
//! exit status. Everything but the command line (`cli.rs`) lives in the library.

mod cli;

use std::io;
use std::process::ExitCode;

use clap::Parser;

use makescope::exit;

fn main() -> ExitCode {
    let result = match cli::Arguments::parse().resolve() {
        cli::Invocation::Run(config, subcommand) => subcommand.execute(&config),
        cli::Invocation::Print(text) => text
            .write(&mut io::stdout().lock())
            .map(|()| 0)
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // `makescope log | head`: a reader that has seen enough is no error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("makescope: error: {error:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

/// Whether writing to stdout failed because its reader went away (also when the
/// failure came through serde_json's writer).
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let kind = match cause.downcast_ref::<io::Error>() {
            Some(e) => Some(e.kind()),
            None => cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind),
        };
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}
