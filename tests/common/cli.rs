//! Running the `gbml` binary from an integration test: exit code (−1 if killed by a signal),
//! stdout and stderr. Test files that need it declare
//! `#[path = "common/cli.rs"] mod cli;`.

use std::process::Command;

/// Run `gbml ARGS…` and return (exit code, stdout, stderr).
pub fn gbml(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gbml"))
        .args(args)
        .output()
        .expect("run gbml");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
