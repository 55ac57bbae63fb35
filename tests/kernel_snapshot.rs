//! Snapshot of a small human-readable kernel table (values to 10 significant digits, so the
//! snapshot is stable under last-bit changes). The values themselves are certified by
//! `kernel_golden.rs`; this snapshot guards the table's layout and conventions (e.g. a change
//! of the zero-input or standard-parameterization convention shows up as a diff here).

use gbml_testbed::kernel::{kernels, Activation, Arch, Parameterization};
use ndarray::array;
use std::fmt::Write;

#[test]
fn kernel_table_snapshot() {
    let x = array![
        [1.0, 0.0, 0.0],
        [0.6, 0.8, 0.0],
        [-1.0, 0.5, 2.0],
        [0.0, 0.0, 0.0]
    ];
    let archs = [
        Arch::new(1, Activation::Relu),
        Arch::new(2, Activation::Relu)
            .with_sigma_w(2f64.sqrt())
            .with_sigma_b(Some(0.1)),
        Arch::new(2, Activation::Erf).with_sigma_b(Some(1.0)),
        Arch::new(3, Activation::leaky_relu(0.1)).with_sigma_w(1.5),
        Arch::new(2, Activation::Identity).with_sigma_b(Some(0.5)),
        Arch::new(2, Activation::Relu)
            .with_sigma_b(Some(0.0))
            .with_parameterization(Parameterization::Standard)
            .with_width(10),
    ];
    let mut out = String::new();
    writeln!(out, "x = [1,0,0], [0.6,0.8,0], [-1,0.5,2], [0,0,0]").unwrap();
    for arch in &archs {
        let k = kernels(arch, x.view(), None).unwrap();
        writeln!(
            out,
            "\nL={} {} sigma_w={:.6} sigma_b={:?} {:?}",
            arch.depth,
            arch.activation.name(),
            arch.sigma_w,
            arch.sigma_b,
            arch.parameterization
        )
        .unwrap();
        for (name, m) in [("nngp", &k.nngp), ("ntk", &k.ntk)] {
            for i in 0..m.nrows() {
                let row: Vec<String> = m.row(i).iter().map(|v| format!("{v:>17.9e}")).collect();
                writeln!(out, "{name:>4}[{i}] {}", row.join(" ")).unwrap();
            }
        }
    }
    insta::assert_snapshot!(out);
}
