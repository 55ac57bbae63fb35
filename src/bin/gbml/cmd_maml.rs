//! `gbml maml` (stub: being built).
use gbml_testbed::Result;

/// Arguments of `gbml maml`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Run the command; returns the process exit code.
pub fn run(_args: Args) -> Result<i32> {
    Err(gbml_testbed::Error::Unsupported(
        "`gbml maml` is not implemented yet".into(),
    ))
}
