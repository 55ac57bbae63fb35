//! `gbml kernel`: NNGP / NTK Gram matrices of a deep fully-connected network (MATH.md §1) for
//! inputs given as `.npy` or JSON (points are rows), written as `.npy` or JSON.
//!
//! ```text
//! gbml kernel --x1 a.npy [--x2 b.npy] --kind ntk|nngp|both --depth L
//!             --activation relu|erf|identity|leaky_relu(0.1)|abrelu(a,b)
//!             --sigma-w 1.0 [--sigma-b 0.1] --parameterization ntk|standard [--width N]
//!             [--rows a..b] [--out K.npy|K.json] [--per-layer] [--precision f64|extended]
//! ```
//!
//! `--precision extended` evaluates in double-double (`gbml_testbed::xprec::kernels`): every
//! entry faithful (≤ 1 ulp) whatever the conditioning, at a higher cost; not with `--per-layer`.
//! With `--layers` it uses the double-double conv kernels (`gbml_testbed::xprec::conv_kernels`).
//!
//! Without `--sigma-b` the network has no bias. `--kind both` and `--per-layer` write one file
//! per matrix: `<stem>.nngp.<ext>`, `<stem>.ntk.<ext>`, `<stem>.<kind>.layer<h>.<ext>`.
//! Without `--out` the matrix (or a JSON object of matrices) is printed on stdout as JSON.
//! Exit codes: 0 ok, 2 unusable input (malformed/non-finite file, dimension mismatch, invalid
//! architecture), 4 I/O.

use gbml_testbed::io::npy;
use gbml_testbed::kernel::{self, Activation, Arch, Kernels, Parameterization};
use gbml_testbed::xprec::{self, Precision};
use gbml_testbed::{Error, Result};
use ndarray::{s, Array2};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Arguments of `gbml kernel`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// First input set X1 (n1 × d), `.npy` (float64/float32/int) or JSON array of arrays.
    #[arg(long)]
    x1: PathBuf,
    /// Second input set X2 (n2 × d); omitted: K(X1, X1), exactly symmetric.
    #[arg(long)]
    x2: Option<PathBuf>,
    /// Which kernel: ntk, nngp or both.
    #[arg(long, default_value = "ntk")]
    kind: String,
    /// Number of hidden layers L ≥ 0.
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Activation: relu, erf, identity, leaky_relu(a), abrelu(a,b).
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Weight scale σ_w > 0.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    sigma_w: f64,
    /// Bias scale σ_b ≥ 0 (omit for no bias; in the standard parameterization a bias with
    /// σ_b = 0 still adds 1 per layer to the NTK).
    #[arg(long, allow_negative_numbers = true)]
    sigma_b: Option<f64>,
    /// Parameterization: ntk (default) or standard (needs --width).
    #[arg(long, default_value = "ntk")]
    parameterization: String,
    /// Width of every hidden layer (standard parameterization).
    #[arg(long)]
    width: Option<usize>,
    /// Only rows a..b (0-based, end exclusive) of the Gram matrix: a bit-exact slice of the full
    /// matrix, for splitting a large Gram matrix into jobs.
    #[arg(long)]
    rows: Option<String>,
    /// Output file (`.npy`, or `.json` for JSON); omitted: JSON on stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the per-layer kernels Σ^h, Θ^h, h = 1..L+1.
    #[arg(long)]
    per_layer: bool,
    /// f64 (fast, default) or extended (double-double, every entry faithful to ≤ 1 ulp).
    #[arg(long, default_value = "f64")]
    precision: Precision,
    /// Convolutional architecture (X as (M, H, W, C) `.npy`), e.g.
    /// 'conv:3:same,relu,conv:3:same,relu,gap,dense'; replaces --depth/--activation.
    /// Words: conv:K:same|valid, avgpool:K, gap, flatten, dense, and the activations.
    #[arg(long)]
    layers: Option<String>,
    /// Conv-kernel normalization: stax (neural-tangents, default) or arora (Arora et al.'s
    /// CNTK code: no 1/C on the input, Θ before the readout term).
    #[arg(long, default_value = "stax")]
    normalization: String,
}

/// `--layers`: the architecture spec from the CLI scales and parameterization.
fn spec_from(args: &Args, layers: &str) -> Result<kernel::Spec> {
    let mut spec = kernel::Spec::parse(layers)?
        .with_sigma_w(args.sigma_w)
        .with_sigma_b(args.sigma_b);
    if crate::vocab::parameterization(&args.parameterization)? == Parameterization::Standard {
        spec = spec.with_standard(args.width.unwrap_or(0));
    }
    spec = spec.with_normalization(match args.normalization.to_ascii_lowercase().as_str() {
        "stax" => kernel::Normalization::Stax,
        "arora" => kernel::Normalization::Arora,
        other => {
            return Err(Error::param(
                "normalization",
                other,
                "expected stax or arora",
            ))
        }
    });
    spec.validate()?;
    Ok(spec)
}

/// An NHWC image stack (M, H, W, C); a matrix (M, d) is read as M images of 1×1×d.
fn read_images(path: &Path) -> Result<ndarray::Array4<f64>> {
    let a = npy::read_npy_any(path)?;
    gbml_testbed::io::reference::images(
        a.view(),
        &format!("{} (images for --layers)", path.display()),
    )
}

/// The conv-kernel path of `gbml kernel` (`--layers`).
fn run_conv(args: &Args, layers: &str) -> Result<Kernels> {
    if args.per_layer {
        return Err(Error::Unsupported("--per-layer with --layers".into()));
    }
    let spec = spec_from(args, layers)?;
    let x1 = read_images(&args.x1)?;
    let x2 = args.x2.as_deref().map(read_images).transpose()?;
    let rows = args
        .rows
        .as_deref()
        .map(|r| parse_rows(r, x1.dim().0))
        .transpose()?
        .unwrap_or(0..x1.dim().0);
    if args.precision == Precision::Extended {
        if args.rows.is_none() {
            return xprec::conv_kernels(&spec, x1.view(), x2.as_ref().map(|x| x.view()));
        }
        // Rows a..b are K(X1[a..b], X2 or X1) (faithful entries, like the full matrix).
        let x2v = x2.as_ref().map_or(x1.view(), |x| x.view());
        return xprec::conv_kernels(&spec, x1.slice(s![rows, .., .., ..]), Some(x2v));
    }
    kernel::conv::kernels_rows(&spec, x1.view(), x2.as_ref().map(|x| x.view()), rows)
}

fn parse_rows(s: &str, n: usize) -> Result<Range<usize>> {
    let bad = || Error::param("rows", s, format!("expected a..b with 0 <= a <= b <= {n}"));
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let a: usize = a.trim().parse().map_err(|_| bad())?;
    let b: usize = b.trim().parse().map_err(|_| bad())?;
    if a > b || b > n {
        return Err(bad());
    }
    Ok(a..b)
}

fn arch_from(args: &Args) -> Result<Arch> {
    let act = Activation::parse(&args.activation)?;
    let p = crate::vocab::parameterization(&args.parameterization)?;
    let mut arch = Arch::new(args.depth, act)
        .with_sigma_w(args.sigma_w)
        .with_sigma_b(args.sigma_b)
        .with_parameterization(p);
    if let Some(w) = args.width {
        arch = arch.with_width(w);
    } else if p == Parameterization::Standard && args.depth > 0 {
        return Err(Error::param(
            "width",
            "(none)",
            "the standard parameterization needs --width",
        ));
    }
    arch.validate()?;
    Ok(arch)
}

/// `<stem>.<tag>.<ext>` next to `out`.
fn tagged(out: &Path, tag: &str) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("kernel");
    let ext = out.extension().and_then(|s| s.to_str()).unwrap_or("npy");
    out.with_file_name(format!("{stem}.{tag}.{ext}"))
}

/// Extended-precision kernels; rows a..b are K(X1[a..b], X2 or X1) (faithful entries, like the
/// full matrix).
fn extended<'a>(
    arch: &Arch,
    args: &Args,
    x1: &'a Array2<f64>,
    x2: Option<ndarray::ArrayView2<'a, f64>>,
    rows: Option<Range<usize>>,
) -> Result<Kernels> {
    if args.per_layer {
        return Err(Error::Unsupported(
            "--per-layer with --precision extended (final layer only)".into(),
        ));
    }
    match rows {
        Some(r) => xprec::kernels(
            arch,
            x1.slice(s![r, ..]),
            Some(x2.unwrap_or_else(|| x1.view())),
        ),
        None => xprec::kernels(arch, x1.view(), x2),
    }
}

/// Run the command; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    let kinds: Vec<&str> = match args.kind.to_ascii_lowercase().as_str() {
        "ntk" => vec!["ntk"],
        "nngp" => vec!["nngp"],
        "both" => vec!["nngp", "ntk"],
        other => return Err(Error::param("kind", other, "expected ntk, nngp or both")),
    };
    if let Some(layers) = &args.layers {
        let k = run_conv(&args, layers)?;
        let outputs = kinds
            .iter()
            .map(|kind| {
                (
                    kind.to_string(),
                    k.get(if *kind == "ntk" {
                        kernel::KernelKind::Ntk
                    } else {
                        kernel::KernelKind::Nngp
                    })
                    .clone(),
                )
            })
            .collect();
        return write_outputs(&args, outputs);
    }
    let arch = arch_from(&args)?;
    let x1 = npy::read_matrix(&args.x1)?;
    let x2 = args.x2.as_deref().map(npy::read_matrix).transpose()?;
    if let Some(x2) = &x2 {
        if x2.ncols() != x1.ncols() {
            return Err(Error::shape(
                "--x1 and --x2 (points are rows)",
                format!("{} columns (d of X1)", x1.ncols()),
                format!("{} columns", x2.ncols()),
            ));
        }
    }
    let rows = args
        .rows
        .as_deref()
        .map(|r| parse_rows(r, x1.nrows()))
        .transpose()?;
    let x2v = x2.as_ref().map(|x| x.view());
    // (tag, matrix) pairs to write.
    let mut outputs: Vec<(String, Array2<f64>)> = Vec::new();
    if args.per_layer {
        let layers = kernel::kernels_per_layer(&arch, x1.view(), x2v)?;
        let r = rows.clone().unwrap_or(0..x1.nrows());
        for (h, k) in layers.iter().enumerate() {
            for kind in &kinds {
                let m = if *kind == "ntk" { &k.ntk } else { &k.nngp };
                outputs.push((
                    format!("{kind}.layer{}", h + 1),
                    m.slice(s![r.clone(), ..]).to_owned(),
                ));
            }
        }
    }
    let k: Kernels = match (&rows, args.precision) {
        (Some(r), Precision::F64) => {
            kernel::kernels_rows_between(&arch, x1.view(), x2v, r.clone())?
        }
        (None, Precision::F64) => kernel::kernels(&arch, x1.view(), x2v)?,
        (r, Precision::Extended) => extended(&arch, &args, &x1, x2v, r.clone())?,
    };
    for kind in &kinds {
        let m = if *kind == "ntk" { &k.ntk } else { &k.nngp };
        outputs.push((kind.to_string(), m.clone()));
    }
    write_outputs(&args, outputs)
}

/// Write the (tag, matrix) outputs to `--out` (one file per matrix) or stdout as JSON.
fn write_outputs(args: &Args, outputs: Vec<(String, Array2<f64>)>) -> Result<i32> {
    let single = outputs.len() == 1;
    match &args.out {
        Some(out) => {
            for (tag, m) in &outputs {
                let path = if single {
                    out.clone()
                } else {
                    tagged(out, tag)
                };
                npy::write_matrix(&path, m)?;
                eprintln!(
                    "gbml kernel: wrote {} ({}×{}) to {}",
                    tag,
                    m.nrows(),
                    m.ncols(),
                    path.display()
                );
            }
        }
        None => {
            let to_rows = |m: &Array2<f64>| -> Vec<Vec<f64>> {
                m.rows().into_iter().map(|r| r.to_vec()).collect()
            };
            let text = if single {
                serde_json::to_string(&to_rows(&outputs[0].1))
            } else {
                let map: serde_json::Map<String, serde_json::Value> = outputs
                    .iter()
                    .map(|(t, m)| (t.clone(), serde_json::json!(to_rows(m))))
                    .collect();
                serde_json::to_string(&map)
            }
            .map_err(|e| Error::Unsupported(format!("JSON output: {e}")))?;
            println!("{text}");
        }
    }
    Ok(0)
}
