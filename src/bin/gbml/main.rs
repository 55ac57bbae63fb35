//! `gbml`: the command-line front of gbml-testbed.
//!
//! Exit codes: 0 success; 1 a check or comparison ran and failed; 2 unusable input
//! (malformed file, shape mismatch, invalid parameter); 3 numerical failure (singular kernel,
//! divergence); 4 I/O error.

mod cmd_advise;
mod cmd_check;
mod cmd_compare;
mod cmd_kernel;
mod cmd_maml;
mod cmd_mnk;
mod cmd_omniglot;
mod vocab;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "gbml",
    version,
    about = "Exact reference and theorem checks for gradient-based meta-learning (Wang, Sun & Li, arXiv 2006.14606)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Design guidance on a task set: learning rates, width, whether meta-learning helps, groups.
    Advise(cmd_advise::Args),
    /// Run the theorem checks on built-in defaults and print the report (the main job).
    Check(cmd_check::Args),
    /// Compute NNGP / NTK Gram matrices of a deep fully-connected network.
    Kernel(cmd_kernel::Args),
    /// Compute the Meta Neural Kernel, predictions and spectral diagnostics.
    Mnk(cmd_mnk::Args),
    /// The paper's Omniglot experiment at this machine's scale: MNK vs G vs finite MAML.
    Omniglot(cmd_omniglot::Args),
    /// Meta-train a finite network with MAML.
    Maml(cmd_maml::Args),
    /// Compare another implementation's outputs against ours, or export conformance packs.
    Compare(cmd_compare::Args),
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Advise(a) => cmd_advise::run(a),
        Cmd::Check(a) => cmd_check::run(a),
        Cmd::Kernel(a) => cmd_kernel::run(a),
        Cmd::Mnk(a) => cmd_mnk::run(a),
        Cmd::Maml(a) => cmd_maml::run(a),
        Cmd::Omniglot(a) => cmd_omniglot::run_cmd(a),
        Cmd::Compare(a) => cmd_compare::run(a),
    };
    let code = match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gbml: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
