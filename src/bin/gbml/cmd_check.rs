//! `gbml check`: run the theorem checks (issue 5) on built-in defaults, print the table
//! `claim | measured | predicted | margin | verdict`, write SVG plots, exit 1 if any claim fails.
use gbml_testbed::checks::{self, Profile, Settings};
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
    /// Also run every claim's negative controls (counterfactuals that must FAIL) and print their
    /// verdicts under each claim; exit 1 if a control does not fail.
    #[arg(long)]
    controls: bool,
    /// Exit 1 on any INCONCLUSIVE claim too.
    #[arg(long)]
    strict: bool,
    /// Run the profile on the first K fixed seeds (20200626, 20200627, …; `--seed` is then
    /// ignored) and print per claim how many seeds pass (and per control how many fail).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=checks::SEEDS.len() as u64))]
    seeds: Option<u64>,
}

/// Run the command; returns the process exit code: 0 if nothing fails, 1 if a claim fails, a
/// control does not fail, or (with `--strict`) a claim is inconclusive.
pub fn run(args: Args) -> Result<i32> {
    let profile = if args.quick {
        Profile::Quick
    } else if args.full {
        Profile::Full
    } else {
        Profile::Default
    };
    let mut settings = Settings::new(profile).with_controls(args.controls);
    settings.seed = args.seed;
    settings.progress = !args.no_progress && !args.json;
    let list: Vec<_> = checks::all_checkers()
        .into_iter()
        .filter(|(id, _)| args.only.as_deref().is_none_or(|o| id.contains(o)))
        .collect();
    if list.is_empty() {
        return Err(Error::param(
            "only",
            args.only.unwrap_or_default(),
            "no check family matches",
        ));
    }
    let seeds: Vec<u64> = match args.seeds {
        Some(k) => checks::SEEDS[..k as usize].to_vec(),
        None => vec![args.seed],
    };
    let mut runs = Vec::new();
    for &seed in &seeds {
        settings.seed = seed;
        let mut reports = Vec::new();
        for (id, f) in &list {
            if settings.progress {
                eprintln!("running check `{id}` ({profile:?} profile, seed {seed})…");
            }
            reports.push(checks::timed(*f, &settings)?);
        }
        runs.push(reports);
    }
    let reports = &runs[0];
    if !args.no_plots {
        let paths = report::write_figures(reports, &args.out)?;
        if !args.json {
            eprintln!("wrote {} plots to {}", paths.len(), args.out.display());
        }
    }
    if args.json {
        if args.seeds.is_some() {
            println!("{}", report::to_json_seeds(&seeds, &runs)?);
        } else {
            println!("{}", report::to_json(reports)?);
        }
    } else {
        for (seed, reports) in seeds.iter().zip(&runs) {
            if seeds.len() > 1 {
                println!("\n== seed {seed} ==");
            }
            print!("{}", report::table(reports, args.verbose));
        }
        if seeds.len() > 1 {
            print!("\n{}", report::seeds_table(&seeds, &runs));
        }
    }
    let all = runs.iter().map(|r| report::Summary::of(r));
    let mut code = 0;
    for m in all {
        if m.fail > 0 || (args.strict && m.inconclusive > 0) || m.controls_fail < m.controls {
            code = 1;
        }
    }
    Ok(code)
}
