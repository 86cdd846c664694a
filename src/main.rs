//! The `makescope` binary: parse arguments, run one subcommand, turn the result into
//! an exit status. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    makescope::cli::main()
}
