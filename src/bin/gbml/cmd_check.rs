//! `gbml check`: run the theorem checks (issue 5) on built-in defaults, print the table
//! `claim | measured | predicted | margin | verdict`, write SVG plots, exit 1 if any claim fails.
use gbml_testbed::checks::{self, Profile, Settings, Verdict};
use gbml_testbed::{report, Error, Result};
use std::path::PathBuf;

/// Arguments of `gbml check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// CI-sized experiments (under a minute on 2 cores).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Thorough sweeps (widths up to 16384, 10 seeds, 16 replicates); 10–25 min on 2 cores.
    #[arg(long)]
    full: bool,
    /// Print the machine-readable JSON report on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Folder for the SVG plots.
    #[arg(long, default_value = "out/check")]
    out: PathBuf,
    /// Do not write plots.
    #[arg(long)]
    no_plots: bool,
    /// Run only the check families whose id contains this string (e.g. `linear`, `theorem1`).
    #[arg(long)]
    only: Option<String>,
    /// Base seed of all experiments.
    #[arg(long, default_value_t = 20200626)]
    seed: u64,
    /// Print each family's parameters and details after the table.
    #[arg(long, short)]
    verbose: bool,
    /// Hide progress bars.
    #[arg(long)]
    no_progress: bool,
}

/// Run the command; returns the process exit code (0 all pass/inconclusive, 1 a claim failed).
pub fn run(args: Args) -> Result<i32> {
    let profile = if args.quick {
        Profile::Quick
    } else if args.full {
        Profile::Full
    } else {
        Profile::Default
    };
    let mut settings = Settings::new(profile);
    settings.seed = args.seed;
    settings.progress = !args.no_progress && !args.json;
    let list: Vec<_> = checks::all_checkers()
        .into_iter()
        .filter(|(id, _)| args.only.as_deref().map_or(true, |o| id.contains(o)))
        .collect();
    if list.is_empty() {
        return Err(Error::param(
            "only",
            args.only.unwrap_or_default(),
            "no check family matches",
        ));
    }
    let mut reports = Vec::new();
    for (id, f) in list {
        if settings.progress {
            eprintln!("running check `{id}` ({:?} profile)…", profile);
        }
        reports.push(checks::timed(f, &settings)?);
    }
    if !args.no_plots {
        let paths = report::write_figures(&reports, &args.out)?;
        if !args.json {
            eprintln!("wrote {} plots to {}", paths.len(), args.out.display());
        }
    }
    if args.json {
        println!("{}", report::to_json(&reports)?);
    } else {
        print!("{}", report::table(&reports, args.verbose));
    }
    let failed = reports.iter().any(|r| r.verdict == Verdict::Fail);
    Ok(if failed { 1 } else { 0 })
}
