//! The subcommands of `quicseal`.

/// `println!` that does not panic when stdout is closed (`quicseal ... | head -1`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that does not panic when stderr is closed.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub(crate) use {errln, outln};

pub mod bench;
pub mod demo;
#[cfg(feature = "interop")]
pub mod interop;

use std::process::ExitCode;

use quicseal_userspace::formats::json;

/// How a command ended, as an exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything as expected: 0.
    Ok,
    /// A check failed (a vector, a packet that did not open or seal): 1.
    Failed,
    /// The demo's packets all opened, but some never arrived: 3.
    Lost,
    /// The run did not finish: the demo's deadline stopped the sender before it sent every
    /// packet: 4, like a run that failed ([`CliError::Run`]).
    Incomplete,
    /// A QUIC Interop Runner test case this endpoint does not take part in: 127, the
    /// runner's convention.
    #[cfg(feature = "interop")]
    Unsupported,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> ExitCode {
        match outcome {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
            Outcome::Lost => ExitCode::from(3),
            Outcome::Incomplete => ExitCode::from(RUN_FAILED),
            #[cfg(feature = "interop")]
            Outcome::Unsupported => ExitCode::from(127),
        }
    }
}

/// Exit status of a run that failed or did not finish (sockets, timeouts, files to write,
/// the demo's deadline, a benchmark that lost packets), apart from bad input's 2.
const RUN_FAILED: u8 = 4;

/// Why a command could not do its work: exit status 2 for bad input or options (like clap's
/// usage errors), 4 when the run itself failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input is not what the command takes.
    #[error(transparent)]
    Input(#[from] json::InputError),
    /// An option's value makes no sense.
    #[error("{0}")]
    Usage(String),
    /// The run itself failed (sockets, timeouts, files, an unclean benchmark).
    #[error("{0}")]
    Run(String),
}

impl CliError {
    /// The exit status this error deserves.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Input(_) | CliError::Usage(_) => ExitCode::from(2),
            CliError::Run(_) => ExitCode::from(RUN_FAILED),
        }
    }
}
