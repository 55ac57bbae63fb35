//! Property tests of the Meta Neural Kernel (MATH.md §2, §3, §5). Reference quantities are
//! computed here naively (per task pair, Gaussian elimination), never by the code under test.

use gbml_testbed::kernel::{self, Activation, Arch};
use gbml_testbed::linalg;
use gbml_testbed::mnk::data::{linear_tasks, sine_tasks, LinearSpec, SineSpec};
use gbml_testbed::mnk::layout::index_tasks;
use gbml_testbed::mnk::{
    assemble_phi, inner_operator, BaseKernel, Mnk, Precomputed, RidgeMode, Schedule, Task, TaskSet,
    Variant,
};
use gbml_testbed::{tol, Error};
use ndarray::{array, s, Array2, ArrayView2};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn arch() -> Arch {
    Arch::new(2, Activation::Relu).with_sigma_b(Some(0.5))
}

fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn rel_err(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    tol::normwise_rel_err(a.as_slice().unwrap(), b.as_slice().unwrap())
}

/// Solve A X = B by Gaussian elimination with partial pivoting (independent of the code under test).
fn solve(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut a = a.to_owned();
    let mut b = b.to_owned();
    for col in 0..n {
        let p = (col..n)
            .max_by(|&i, &j| a[[i, col]].abs().partial_cmp(&a[[j, col]].abs()).unwrap())
            .unwrap();
        for j in 0..n {
            a.swap([col, j], [p, j]);
        }
        for j in 0..b.ncols() {
            b.swap([col, j], [p, j]);
        }
        for i in col + 1..n {
            let f = a[[i, col]] / a[[col, col]];
            for j in col..n {
                a[[i, j]] -= f * a[[col, j]];
            }
            for j in 0..b.ncols() {
                b[[i, j]] -= f * b[[col, j]];
            }
        }
    }
    let mut x = Array2::zeros(b.dim());
    for j in 0..b.ncols() {
        for i in (0..n).rev() {
            let mut s = b[[i, j]];
            for l in i + 1..n {
                s -= a[[i, l]] * x[[l, j]];
            }
            x[[i, j]] = s / a[[i, i]];
        }
    }
    x
}

fn ntk(x1: &Array2<f64>, x2: &Array2<f64>) -> Array2<f64> {
    kernel::ntk(&arch(), x1.view(), Some(x2.view())).unwrap()
}

/// Naive per-pair four-term block formula (MATH.md §3).
fn naive_phi(set: &TaskSet, inner: &Schedule) -> Array2<f64> {
    let ts = set.tasks();
    let tmat: Vec<Array2<f64>> = ts
        .iter()
        .map(|t| inner_operator(ntk(&t.xs, &t.xs).view(), inner).unwrap())
        .collect();
    let nq = set.n_query();
    let qo = set.query_offsets();
    let mut phi = Array2::zeros((nq, nq));
    for (i, ti) in ts.iter().enumerate() {
        for (j, tj) in ts.iter().enumerate() {
            let ai = linalg::matmul(ntk(&ti.xq, &ti.xs).view(), tmat[i].view());
            let aj = linalg::matmul(ntk(&tj.xq, &tj.xs).view(), tmat[j].view());
            let b = ntk(&ti.xq, &tj.xq)
                - linalg::matmul(ai.view(), ntk(&ti.xs, &tj.xq).view())
                - linalg::matmul_t(ntk(&ti.xq, &tj.xs).view(), aj.view())
                + linalg::matmul_t(
                    linalg::matmul(ai.view(), ntk(&ti.xs, &tj.xs).view()).view(),
                    aj.view(),
                );
            phi.slice_mut(s![qo[i]..qo[i + 1], qo[j]..qo[j + 1]])
                .assign(&b);
        }
    }
    phi
}

fn schedules() -> impl Strategy<Value = Schedule> {
    prop_oneof![
        (0.01f64..10.0).prop_map(Schedule::flow),
        (0.001f64..0.05, 1usize..20).prop_map(|(lr, t)| Schedule::steps(lr, t)),
        (1e-3f64..1.0).prop_map(|r| Schedule::infinite().with_ridge(r, RidgeMode::InverseOnly)),
    ]
}

fn linear_set(seed: u64, n_tasks: usize, m: usize, n: usize) -> TaskSet {
    linear_tasks(
        LinearSpec {
            tasks: n_tasks,
            m,
            n,
            d: 6,
            spread: 0.5,
        },
        seed,
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Φ is exactly symmetric and PSD up to rounding; the factorised assembly equals the naive
    /// four-term block formula.
    #[test]
    fn phi_symmetric_psd_and_equals_block_formula(seed in 0u64..1000, inner in schedules(),
                                                   n_tasks in 1usize..5, m in 1usize..5, n in 1usize..4) {
        let set = linear_set(seed, n_tasks, m, n);
        let mnk = Mnk::new(BaseKernel::Analytic(arch()), inner);
        let phi = mnk.phi(&set).unwrap();
        for i in 0..phi.nrows() { for j in 0..i { prop_assert_eq!(phi[[i, j]].to_bits(), phi[[j, i]].to_bits()); } }
        let w = linalg::sym_eigvals(phi.view()).unwrap();
        let scale = max_abs(&phi);
        prop_assert!(w[0] >= -tol::n_eps(100.0, phi.nrows()) * scale, "λ_min = {} (scale {scale})", w[0]);
        let naive = naive_phi(&set, &inner);
        let e = rel_err(&phi, &naive);
        prop_assert!(e <= tol::n_eps(200.0, phi.nrows() + m), "factorised vs block formula: {e:e}");
    }

    /// Eigenvalues of T lie in (0, g(0)] = (0, λτ] (resp. (0, s], (0, 1/ρ]).
    #[test]
    fn inner_operator_eigenvalues_in_range(seed in 0u64..1000, inner in schedules(), m in 1usize..8) {
        let set = linear_set(seed, 1, m, 1);
        let t0 = &set.tasks()[0];
        let th = ntk(&t0.xs, &t0.xs);
        let t = inner_operator(th.view(), &inner).unwrap();
        let w = linalg::sym_eigvals(t.view()).unwrap();
        let gmax = inner.g_max();
        prop_assert!(w[0] > 0.0, "λ_min(T) = {}", w[0]);
        prop_assert!(w[m - 1] <= gmax * (1.0 + tol::n_eps(20.0, m)), "λ_max(T) = {} > {gmax}", w[m - 1]);
    }

    /// Row blocks of Φ are bit-identical to the full matrix's rows.
    #[test]
    fn phi_rows_are_exact_slices(seed in 0u64..1000, n_tasks in 1usize..5, a in 0usize..12, len in 0usize..12) {
        let set = linear_set(seed, n_tasks, 3, 3);
        let mnk = Mnk::new(BaseKernel::Analytic(arch()), Schedule::flow(0.7));
        let phi = mnk.phi(&set).unwrap();
        let nq = set.n_query();
        let a = a.min(nq);
        let b = (a + len).min(nq);
        let rows = mnk.phi_rows(&set, a..b).unwrap();
        for (l, r) in (a..b).enumerate() {
            for c in 0..nq {
                prop_assert_eq!(rows[[l, c]].to_bits(), phi[[r, c]].to_bits(), "row {} col {}", r, c);
            }
        }
    }
}

/// T = 0 (λ = 0, τ = 0 or s = 0) gives Φ = Θ(X, X).
#[test]
fn zero_inner_time_gives_ntk() {
    let set = linear_set(7, 3, 4, 3);
    let k = ntk(&set.query_x(), &set.query_x());
    for inner in [
        Schedule::steps(0.0, 5),
        Schedule::steps(0.1, 0),
        Schedule::flow(0.0),
    ] {
        let phi = Mnk::new(BaseKernel::Analytic(arch()), inner)
            .phi(&set)
            .unwrap();
        let e = rel_err(&phi, &k);
        assert!(e <= tol::n_eps(4.0, 9), "{inner:?}: {e:e}");
    }
}

/// Infinite inner time: diagonal blocks are the GP posterior covariance
/// Θ(X,X) − Θ(X,X') Θ'⁻¹ Θ(X',X) (computed here by Gaussian elimination).
#[test]
fn infinite_inner_time_gives_gp_posterior() {
    let set = linear_set(11, 3, 4, 5);
    let phi = Mnk::new(BaseKernel::Analytic(arch()), Schedule::infinite())
        .phi(&set)
        .unwrap();
    let qo = set.query_offsets();
    for (i, t) in set.tasks().iter().enumerate() {
        let kqq = ntk(&t.xq, &t.xq);
        let kqs = ntk(&t.xq, &t.xs);
        let kss = ntk(&t.xs, &t.xs);
        let post = &kqq - &linalg::matmul(kqs.view(), solve(kss.view(), kqs.t()).view());
        let blk = phi.slice(s![qo[i]..qo[i + 1], qo[i]..qo[i + 1]]).to_owned();
        let e = (&blk - &post).iter().fold(0.0f64, |m, v| m.max(v.abs())) / max_abs(&kqq);
        assert!(e <= 1e-11, "task {i}: {e:e}");
    }
}

/// Discrete T → flow T as λ → 0 at fixed λτ, with error O(λ): measured slope ≈ 1.
#[test]
fn discrete_converges_to_flow_linearly() {
    let set = linear_set(3, 1, 5, 1);
    let t0 = &set.tasks()[0];
    let th = ntk(&t0.xs, &t0.xs);
    let s_time = 2.0 / linalg::sym_eigvals(th.view()).unwrap()[4];
    let flow = inner_operator(th.view(), &Schedule::flow(s_time)).unwrap();
    let mut errs = vec![];
    let taus = [10usize, 100, 1000, 10000];
    for &tau in &taus {
        let d = inner_operator(th.view(), &Schedule::steps(s_time / tau as f64, tau)).unwrap();
        errs.push(rel_err(&d, &flow));
    }
    println!("‖T_steps − T_flow‖/‖T_flow‖ for τ = {taus:?}: {errs:?}");
    for w in errs.windows(2) {
        let slope = (w[0] / w[1]).log10();
        assert!(
            (0.9..=1.1).contains(&slope),
            "slope per decade of λ: {slope} ({errs:?})"
        );
    }
}

/// Outer time 0 gives the G term; infinite outer time interpolates the training query labels.
#[test]
fn predictor_limits() {
    let train = sine_tasks(
        SineSpec {
            tasks: 6,
            m: 5,
            n: 4,
            noise: 0.0,
        },
        1,
    )
    .unwrap();
    let test = sine_tasks(
        SineSpec {
            tasks: 2,
            m: 5,
            n: 4,
            noise: 0.0,
        },
        2,
    )
    .unwrap();
    let mnk = Mnk::new(BaseKernel::Analytic(arch()), Schedule::steps(0.01, 3));
    let p0 = mnk
        .predict(&train, &test, &Schedule::flow(0.0), None)
        .unwrap();
    assert_eq!(p0.test, p0.g_test);
    assert_eq!(p0.train, p0.g_train);
    let p0s = mnk
        .predict(&train, &test, &Schedule::steps(0.1, 0), None)
        .unwrap();
    assert_eq!(p0s.test, p0s.g_test);
    let pinf = mnk
        .predict(&train, &test, &Schedule::infinite(), None)
        .unwrap();
    let y = train.query_y();
    let e = rel_err(&pinf.train, &y);
    let kappa = pinf.spectrum.condition;
    println!("interpolation error {e:e}, κ(Φ) = {kappa:e}");
    assert!(
        e <= tol::n_eps(10.0, y.nrows()) * kappa,
        "interpolation {e:e}, κ = {kappa:e}"
    );
}

/// ANIL with a precomputed kernel equals ANIL with the analytic kernel (same Θ, Σ).
#[test]
fn precomputed_kernel_matches_analytic_anil() {
    let set = linear_set(5, 3, 3, 2);
    let z = set.points();
    let k = kernel::kernels(&arch(), z.view(), None).unwrap();
    let idx: Vec<f64> = (0..z.nrows()).map(|i| i as f64).collect();
    let nq = set.n_query();
    let (mut qo, mut so) = (0, nq);
    let tasks: Vec<Task> = set
        .tasks()
        .iter()
        .map(|t| {
            let xq = Array2::from_shape_fn((t.n(), 1), |(r, _)| idx[qo + r]);
            let xs = Array2::from_shape_fn((t.m(), 1), |(r, _)| idx[so + r]);
            qo += t.n();
            so += t.m();
            Task::new(xs, t.ys.clone(), xq, t.yq.clone()).unwrap()
        })
        .collect();
    let iset = TaskSet::new(tasks).unwrap();
    let pre = BaseKernel::Precomputed(Precomputed {
        ntk: k.ntk.clone(),
        nngp: Some(k.nngp.clone()),
    });
    for v in [Variant::Maml, Variant::Anil] {
        let a = Mnk::new(BaseKernel::Analytic(arch()), Schedule::flow(1.5))
            .with_variant(v)
            .phi(&set)
            .unwrap();
        let b = Mnk::new(pre.clone(), Schedule::flow(1.5))
            .with_variant(v)
            .phi(&iset)
            .unwrap();
        assert!(rel_err(&a, &b) <= tol::n_eps(10.0, 12), "{v:?}");
    }
    // ANIL differs from MAML.
    let a = Mnk::new(pre.clone(), Schedule::flow(1.5))
        .phi(&iset)
        .unwrap();
    let b = Mnk::new(pre, Schedule::flow(1.5))
        .with_variant(Variant::Anil)
        .phi(&iset)
        .unwrap();
    assert!(rel_err(&a, &b) > 1e-3);
}

/// Bad inputs give typed errors, never panics or NaN.
#[test]
fn bad_inputs_are_typed_errors() {
    let x = array![[0.1, 0.2], [0.3, 0.4]];
    let y = array![[1.0], [2.0]];
    assert!(matches!(TaskSet::new(vec![]), Err(Error::Empty(_))));
    assert!(matches!(
        Task::new(
            Array2::zeros((0, 2)),
            Array2::zeros((0, 1)),
            x.clone(),
            y.clone()
        ),
        Err(Error::Empty(_))
    ));
    assert!(matches!(
        Task::new(x.clone(), array![[1.0]], x.clone(), y.clone()),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        Task::new(x.clone(), y.clone(), array![[0.1, 0.2, 0.3]], array![[1.0]]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        Task::new(
            array![[f64::NAN, 0.0], [0.0, 1.0]],
            y.clone(),
            x.clone(),
            y.clone()
        ),
        Err(Error::NonFinite { .. })
    ));
    let t1 = Task::new(x.clone(), y.clone(), x.clone(), y.clone()).unwrap();
    let t2 = Task::new(
        array![[0.1], [0.2]],
        y.clone(),
        array![[0.3]],
        array![[1.0]],
    )
    .unwrap();
    assert!(matches!(
        TaskSet::new(vec![t1.clone(), t2]),
        Err(Error::Shape { .. })
    ));
    let t3 = Task::new(
        x.clone(),
        array![[1.0, 0.0], [0.0, 1.0]],
        x.clone(),
        array![[1.0, 0.0], [0.0, 1.0]],
    )
    .unwrap();
    assert!(matches!(
        TaskSet::new(vec![t1.clone(), t3]),
        Err(Error::Shape { .. })
    ));
    let set = TaskSet::new(vec![t1.clone()]).unwrap();
    let mk = |s: Schedule| Mnk::new(BaseKernel::Analytic(arch()), s).phi(&set);
    assert!(matches!(
        mk(Schedule::steps(-0.1, 3)),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        mk(Schedule::flow(-1.0)),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        mk(Schedule::flow(f64::NAN)),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        mk(Schedule::infinite().with_ridge(-1.0, RidgeMode::Both)),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        mk(Schedule::steps(1e6, 3)),
        Err(Error::InvalidParameter { .. })
    ));
    // Singular support kernel (duplicated support point) with infinite time and no ridge.
    let dup = Task::new(
        array![[0.1, 0.2], [0.1, 0.2]],
        y.clone(),
        x.clone(),
        y.clone(),
    )
    .unwrap();
    let dset = TaskSet::new(vec![dup]).unwrap();
    let r = Mnk::new(BaseKernel::Analytic(arch()), Schedule::infinite()).phi(&dset);
    match r {
        Err(Error::Singular {
            suggested_ridge, ..
        }) => assert!(suggested_ridge > 0.0),
        other => panic!("expected Singular, got {other:?}"),
    }
    // ... and a ridge fixes it.
    assert!(Mnk::new(
        BaseKernel::Analytic(arch()),
        Schedule::infinite().with_ridge(1e-6, RidgeMode::InverseOnly)
    )
    .phi(&dset)
    .is_ok());
    // Rows out of range.
    let mnk = Mnk::new(BaseKernel::Analytic(arch()), Schedule::flow(1.0));
    assert!(matches!(
        mnk.phi_rows(&set, 0..5),
        Err(Error::InvalidParameter { .. })
    ));
    // Precomputed kernel with bad indices.
    let pre = Mnk::new(
        BaseKernel::Precomputed(Precomputed {
            ntk: Array2::eye(3),
            nngp: None,
        }),
        Schedule::flow(1.0),
    );
    let it = Task::new(
        array![[0.0], [5.0]],
        y.clone(),
        array![[1.0]],
        array![[0.0]],
    )
    .unwrap();
    assert!(matches!(
        pre.phi(&TaskSet::new(vec![it.clone()]).unwrap()),
        Err(Error::InvalidParameter { .. })
    ));
    // ANIL with a precomputed kernel lacking the NNGP.
    let it = Task::new(
        array![[0.0], [2.0]],
        y.clone(),
        array![[1.0]],
        array![[0.0]],
    )
    .unwrap();
    let r = pre
        .with_variant(Variant::Anil)
        .phi(&TaskSet::new(vec![it]).unwrap());
    assert!(matches!(r, Err(Error::Unsupported(_))));
}

/// Layout round trips: per-task arrays and the queries-first stack reproduce the task set;
/// index tasks over a precomputed Gram reproduce the analytic Φ and cross kernel.
#[test]
fn layouts_round_trip() {
    use gbml_testbed::mnk::layout::*;
    let set = linear_set(9, 4, 3, 2);
    let pt = to_per_task(&set).unwrap();
    assert_eq!(
        from_per_task(pt.xs.view(), pt.ys.view(), pt.xq.view(), pt.yq.view()).unwrap(),
        set
    );
    let (x, y) = to_queries_first(&set);
    assert_eq!(
        from_queries_first(x.view(), y.view(), 4, 3, 2).unwrap(),
        set
    );
    assert!(matches!(
        from_queries_first(x.view(), y.view(), 4, 2, 3),
        Ok(_)
    ));
    assert!(matches!(
        from_queries_first(x.view(), y.view(), 5, 3, 2),
        Err(Error::Shape { .. })
    ));
    let test = linear_set(10, 2, 3, 2);
    let all = ndarray::concatenate(
        ndarray::Axis(0),
        &[set.points().view(), test.points().view()],
    )
    .unwrap();
    let k = kernel::kernels(&arch(), all.view(), None).unwrap();
    let pre = BaseKernel::Precomputed(Precomputed {
        ntk: k.ntk,
        nngp: Some(k.nngp),
    });
    let itrain = index_tasks(&set, 0).unwrap();
    let itest = index_tasks(&test, set.n_query() + set.n_support()).unwrap();
    let a = Mnk::new(BaseKernel::Analytic(arch()), Schedule::flow(0.8));
    let b = Mnk::new(pre, Schedule::flow(0.8));
    assert!(rel_err(&a.phi(&set).unwrap(), &b.phi(&itrain).unwrap()) <= tol::n_eps(10.0, 20));
    assert!(
        rel_err(
            &a.cross(&test, &set).unwrap(),
            &b.cross(&itest, &itrain).unwrap()
        ) <= tol::n_eps(10.0, 20)
    );
}

/// A task set with varying m_i, n_i (1..=6 supports, 1..=9 queries) large enough to span
/// several tiles of the full assembly (tiles are ≥ 120 query rows).
fn ragged_set(seed: u64, n_tasks: usize) -> TaskSet {
    let mut sizes = ChaCha8Rng::seed_from_u64(seed);
    let tasks: Vec<Task> = (0..n_tasks)
        .map(|i| {
            let (m, n) = (sizes.gen_range(1..=6), sizes.gen_range(1..=9));
            linear_set(seed * 1000 + i as u64, 1, m, n).tasks()[0].clone()
        })
        .collect();
    TaskSet::new(tasks).unwrap()
}

/// Φ of a set spanning several tiles (ragged task sizes): equals the per-pair block formula,
/// is exactly symmetric, does not depend on the number of threads (bit for bit), and row
/// shards cut anywhere (inside tasks, across tile boundaries) stitch back to Φ bit for bit,
/// for the analytic kernel and for the same kernel given as a precomputed matrix.
#[test]
fn tiled_assembly_is_exact_across_tiles_and_threads() {
    let set = ragged_set(11, 70);
    let nq = set.n_query();
    assert!(nq > 2 * 120, "the set must span several tiles (nq = {nq})");
    let inner = Schedule::flow(0.8);
    let mnk = Mnk::new(BaseKernel::Analytic(arch()), inner);
    let phi = mnk.phi(&set).unwrap();
    assert_bit_symmetric(&phi);
    let naive = naive_phi(&set, &inner);
    let e = rel_err(&phi, &naive);
    assert!(e <= tol::n_eps(200.0, nq), "tiled vs block formula: {e:e}");
    // Thread count: 1 and 3 worker threads give the same bits.
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let p = pool.install(|| mnk.phi(&set).unwrap());
        assert!(
            p.iter().zip(&phi).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{threads} threads"
        );
    }
    // Shards at arbitrary cut points, stitched.
    let cuts = [0, 1, 37, 119, 120, 121, 200, nq - 1, nq];
    assert_shards_stitch(&mnk, &set, &cuts, &phi);
    // The same kernel as a precomputed matrix (identity index list: borrowed, not copied).
    let z = set.points();
    let k = kernel::kernels(&arch(), z.view(), None).unwrap();
    let iset = index_tasks(&set, 0).unwrap();
    let pre = Mnk::new(
        BaseKernel::Precomputed(Precomputed {
            ntk: k.ntk.clone(),
            nngp: None,
        }),
        inner,
    );
    let p2 = pre.phi(&iset).unwrap();
    assert!(p2.iter().zip(&phi).all(|(a, b)| a.to_bits() == b.to_bits()));
    let ad = pre.adapters(&iset).unwrap();
    let p3 = assemble_phi(&iset, &ad, k.ntk.view()).unwrap();
    assert!(p3.iter().zip(&phi).all(|(a, b)| a.to_bits() == b.to_bits()));
    let r2 = pre.phi_rows(&iset, 90..130).unwrap();
    assert!(r2
        .iter()
        .zip(phi.slice(s![90..130, ..]))
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

/// A non-finite entry of the outer Gram matrix that enters Φ is a typed error (the finiteness
/// check is fused into the assembly), for the precomputed kernel and for `assemble_phi`.
#[test]
fn non_finite_gram_entries_are_typed_errors() {
    let set = ragged_set(3, 30);
    let z = set.points();
    let k = kernel::ntk(&arch(), z.view(), None).unwrap();
    let iset = index_tasks(&set, 0).unwrap();
    let nq = set.n_query();
    let inner = Schedule::flow(0.8);
    let ok = Mnk::new(
        BaseKernel::Precomputed(Precomputed {
            ntk: k.clone(),
            nngp: None,
        }),
        inner,
    );
    let ad = ok.adapters(&iset).unwrap();
    // Query-query (upper triangle, in the last tile), query-support, support-support entries.
    for (r, c, v) in [
        (3, nq - 2, f64::NAN),
        (nq - 1, nq + 2, f64::INFINITY),
        (nq + 1, nq + 1, f64::NEG_INFINITY),
    ] {
        let mut bad = k.clone();
        bad[[r, c]] = v;
        bad[[c, r]] = v;
        let e = assemble_phi(&iset, &ad, bad.view()).unwrap_err();
        assert!(matches!(e, Error::NonFinite { .. }), "{e}");
        let mnk = Mnk::new(
            BaseKernel::Precomputed(Precomputed {
                ntk: bad,
                nngp: None,
            }),
            inner,
        );
        let e = mnk.phi(&iset).unwrap_err();
        assert!(matches!(e, Error::NonFinite { .. }), "{e}");
        let e = mnk.phi_rows(&iset, r.min(nq - 1)..nq).unwrap_err();
        assert!(matches!(e, Error::NonFinite { .. }), "{e}");
    }
}

/// A task with more query rows than a tile may hold (1024) switches the full assembly to the
/// row path: still equal to the block formula, exactly symmetric, and bit-identical to
/// `phi_rows` shards.
#[test]
fn huge_task_uses_row_path_with_same_guarantees() {
    let mut tasks: Vec<Task> = linear_set(21, 1, 4, 1100).tasks().to_vec();
    tasks.extend(linear_set(22, 2, 3, 5).tasks().iter().cloned());
    let set = TaskSet::new(tasks).unwrap();
    let nq = set.n_query();
    let inner = Schedule::flow(0.8);
    let mnk = Mnk::new(BaseKernel::Analytic(arch()), inner);
    let phi = mnk.phi(&set).unwrap();
    assert_bit_symmetric(&phi);
    let e = rel_err(&phi, &naive_phi(&set, &inner));
    assert!(
        e <= tol::n_eps(200.0, nq),
        "row path vs block formula: {e:e}"
    );
    assert_shards_stitch(&mnk, &set, &[0, 500, 1099, 1102, nq], &phi);
}

/// Φ is exactly symmetric: Φ[i, j] and Φ[j, i] have the same bits.
fn assert_bit_symmetric(phi: &Array2<f64>) {
    for i in 0..phi.nrows() {
        for j in 0..i {
            assert_eq!(phi[[i, j]].to_bits(), phi[[j, i]].to_bits(), "({i}, {j})");
        }
    }
}

/// `phi_rows` over consecutive `cuts` stitched back equals `phi` bit for bit.
fn assert_shards_stitch(mnk: &Mnk, set: &TaskSet, cuts: &[usize], phi: &Array2<f64>) {
    let mut stitched = Array2::<f64>::zeros((0, phi.ncols()));
    for w in cuts.windows(2) {
        let rows = mnk.phi_rows(set, w[0]..w[1]).unwrap();
        stitched.append(ndarray::Axis(0), rows.view()).unwrap();
    }
    assert!(
        stitched
            .iter()
            .zip(phi)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "shards {cuts:?} do not stitch back to Φ bit for bit"
    );
}
