//! Fast exact meta-gradient for full adaptation ([`super::Adapt::Full`]) that never forms a per-task
//! parameter vector: the low-rank structure of the inner loop, batched over tasks.
//!
//! Every inner gradient of a weight matrix has rank ≤ m: ∇_{W^h} ℓ'(θ_r) = s_h (Δ_r^h)ᵀ A_r^{h−1}
//! ([`crate::net::backward`]). Hence the inner iterates are the shared W^h plus a low-rank term,
//!
//! ```text
//! W_s^h = W^h + c_h (U_s^h)ᵀ V_s^h,   c_h = −λ s_h,   U_s^h = [Δ_0^h; …; Δ_{s−1}^h],  V_s^h = [A_0^{h−1}; …; A_{s−1}^{h−1}]
//! b_s^h = b^h − λ β Σ_{r<s} 1ᵀ Δ_r^h
//! ```
//!
//! so a layer product is `X (W_s)ᵀ = X Wᵀ + c (X Vᵀ) U` and `Δ W_s = Δ W + c (Δ Uᵀ) V`: the dense
//! part `X Wᵀ` / `Δ W` is ONE GEMM over the rows of all tasks stacked (W is shared), the rest is
//! thin per-task products. The parameter cotangent g of [`super::metagrad`] stays factored the same
//! way (weight part Σ Pᵀ Q, bias part dense): the query gradient is s_h (Δ_q^h)ᵀ A_q^{h−1}, and each
//! back-step g ← g − λ H_s g appends the factors of the R-backward weight products
//! s_h ((RΔ^h)ᵀ A^{h−1} + (Δ^h)ᵀ RA^{h−1}) ([`crate::net::hvp`]), i.e. 2m rows per layer.
//! The dense meta-gradient is assembled once at the end: one GEMM per layer over all tasks'
//! factors. The arithmetic is the same chain rule as the dense path, reassociated; the two agree
//! to rounding (`tests/maml_lowrank.rs`).
//!
//! Memory: O(N (n + 2mτ) width) for the factors instead of (τ+1)·P per task.

use super::task::{MamlConfig, Order};
use crate::linalg::{as_faer, as_faer_mut, gemm_into, matmul_t};
use crate::task::Task;
use rayon::prelude::*;

/// `A Bᵀ`, single-threaded (thin per-task products: parallel overhead would dominate; the
/// parallelism is across tasks instead).
fn mt_seq(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
    let mut c = Array2::zeros((a.nrows(), b.nrows()));
    if a.ncols() > 0 {
        let bt = b.t();
        let mut cv = c.view_mut();
        faer::linalg::matmul::matmul(
            as_faer_mut(&mut cv),
            faer::Accum::Replace,
            as_faer(&a),
            as_faer(&bt),
            1.0,
            faer::Par::Seq,
        );
    }
    c
}

/// `C += alpha A B`, single-threaded.
fn acc_seq(c: &mut Array2<f64>, a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>, alpha: f64) {
    if a.ncols() == 0 {
        return;
    }
    let mut cv = c.view_mut();
    faer::linalg::matmul::matmul(
        as_faer_mut(&mut cv),
        faer::Accum::Add,
        as_faer(&a),
        as_faer(&b),
        alpha,
        faer::Par::Seq,
    );
}

/// Row offsets of consecutive blocks.
fn offsets<'a>(rows: impl Iterator<Item = usize> + 'a) -> Vec<usize> {
    let mut v = vec![0];
    for r in rows {
        let last = *v.last().expect("non-empty");
        v.push(last + r);
    }
    v
}
use crate::net::Mlp;
use ndarray::{concatenate, s, Array1, Array2, ArrayView1, ArrayView2, Axis};

/// Support pass of one task at one inner iterate.
struct StepCache {
    /// A^0..A^L.
    a: Vec<Array2<f64>>,
    /// Z^1..Z^L.
    z: Vec<Array2<f64>>,
    /// φ'(Z^1..Z^L).
    dphi: Vec<Array2<f64>>,
    /// Δ^1..Δ^{L+1}.
    delta: Vec<Array2<f64>>,
    /// D^h = s_{h+1} Δ^{h+1} W_s^{h+1} for h = 1..L (so Δ^h = D^h ⊙ φ'(Z^h)).
    d: Vec<Array2<f64>>,
}

/// Per-task state: support caches and the accumulated low-rank inner-loop corrections.
struct TaskState {
    steps: Vec<StepCache>,
    /// U^h (rows Δ_r^h), per layer.
    u: Vec<Array2<f64>>,
    /// V^h (rows A_r^{h−1}), per layer.
    v: Vec<Array2<f64>>,
    /// b_s^h − b^h, per layer (unused without biases).
    db: Vec<Array1<f64>>,
    /// Support size m.
    m: usize,
}

/// A factored parameter vector: weight part Σ Pᵀ Q per layer, dense bias part.
struct Factored {
    p: Vec<Array2<f64>>,
    q: Vec<Array2<f64>>,
    b: Vec<Array1<f64>>,
}

fn append_rows(a: &mut Array2<f64>, rows: ArrayView2<'_, f64>) {
    if a.nrows() == 0 {
        *a = rows.to_owned();
    } else {
        let mut out = Array2::zeros((a.nrows() + rows.nrows(), a.ncols()));
        out.slice_mut(s![..a.nrows(), ..]).assign(a);
        out.slice_mut(s![a.nrows().., ..]).assign(&rows);
        *a = out;
    }
}

struct Ctx<'n, 't> {
    net: &'n Mlp,
    theta: ArrayView1<'t, f64>,
    lr: f64,
}

impl Ctx<'_, '_> {
    fn c(&self, h: usize) -> f64 {
        -self.lr * self.net.layers()[h - 1].w_scale
    }

    /// Per task: X_i (W_s^h)ᵀ with the first `s` inner steps' corrections of each task.
    fn fwd_lin(
        &self,
        h: usize,
        xs: &[ArrayView2<'_, f64>],
        st: &[&TaskState],
        s: usize,
    ) -> Vec<Array2<f64>> {
        let w = self.net.w(self.theta, h);
        let stacked = concatenate(Axis(0), xs).expect("same columns");
        let y = matmul_t(stacked.view(), w);
        let c = self.c(h);
        let off = offsets(xs.iter().map(|x| x.nrows()));
        (0..xs.len())
            .into_par_iter()
            .map(|i| {
                let (x, t) = (&xs[i], st[i]);
                let mut yi = y.slice(s![off[i]..off[i + 1], ..]).to_owned();
                let k = s * t.m;
                if k > 0 && c != 0.0 {
                    let vv = t.v[h - 1].slice(s![0..k, ..]);
                    let uu = t.u[h - 1].slice(s![0..k, ..]);
                    let xv = mt_seq(x.view(), vv);
                    acc_seq(&mut yi, xv.view(), uu, c);
                }
                yi
            })
            .collect()
    }

    /// Per task: Δ_i W_s^h.
    fn bwd_lin(
        &self,
        h: usize,
        ds: &[ArrayView2<'_, f64>],
        st: &[&TaskState],
        s: usize,
    ) -> Vec<Array2<f64>> {
        let w = self.net.w(self.theta, h);
        let stacked = concatenate(Axis(0), ds).expect("same columns");
        let mut y = Array2::zeros((stacked.nrows(), w.ncols()));
        gemm_into(&mut y, false, stacked.view(), false, w, false, 1.0);
        let c = self.c(h);
        let off = offsets(ds.iter().map(|d| d.nrows()));
        (0..ds.len())
            .into_par_iter()
            .map(|i| {
                let (d, t) = (&ds[i], st[i]);
                let mut yi = y.slice(s![off[i]..off[i + 1], ..]).to_owned();
                let k = s * t.m;
                if k > 0 && c != 0.0 {
                    let vv = t.v[h - 1].slice(s![0..k, ..]);
                    let uu = t.u[h - 1].slice(s![0..k, ..]);
                    let du = mt_seq(d.view(), uu);
                    acc_seq(&mut yi, du.view(), vv, c);
                }
                yi
            })
            .collect()
    }

    /// Forward pass of all tasks on inputs `xs` at their iterates θ_s. Returns (A, Z, φ'(Z), out).
    #[allow(clippy::type_complexity)]
    fn forward(
        &self,
        xs: Vec<Array2<f64>>,
        st: &[&TaskState],
        s: usize,
    ) -> (
        Vec<Vec<Array2<f64>>>,
        Vec<Vec<Array2<f64>>>,
        Vec<Vec<Array2<f64>>>,
        Vec<Array2<f64>>,
    ) {
        let net = self.net;
        let act = net.activation;
        let depth = net.depth();
        let nt = xs.len();
        let mut a: Vec<Vec<Array2<f64>>> = xs.into_iter().map(|x| vec![x]).collect();
        let mut z: Vec<Vec<Array2<f64>>> = vec![Vec::new(); nt];
        let mut dp: Vec<Vec<Array2<f64>>> = vec![Vec::new(); nt];
        let mut out = Vec::new();
        for h in 1..=depth + 1 {
            let l = &net.layers()[h - 1];
            let views: Vec<ArrayView2<f64>> = a.iter().map(|ai| ai[h - 1].view()).collect();
            let lin = self.fwd_lin(h, &views, st, s);
            for (i, mut zi) in lin.into_iter().enumerate() {
                zi *= l.w_scale;
                if let Some(b) = net.b(self.theta, h) {
                    let bb = (&b + &st[i].db[h - 1]) * l.b_scale;
                    zi += &bb.view().insert_axis(Axis(0));
                }
                if h <= depth {
                    a[i].push(zi.mapv(|v| act.phi(v)));
                    dp[i].push(zi.mapv(|v| act.dphi(v)));
                    z[i].push(zi);
                } else {
                    out.push(zi);
                }
            }
        }
        (a, z, dp, out)
    }

    /// Backward from output cotangents `r` at θ_s: returns (Δ^1..Δ^{L+1}, D^1..D^L) per task.
    #[allow(clippy::type_complexity)]
    fn backward(
        &self,
        r: Vec<Array2<f64>>,
        dphi: &[Vec<Array2<f64>>],
        st: &[&TaskState],
        s: usize,
    ) -> (Vec<Vec<Array2<f64>>>, Vec<Vec<Array2<f64>>>) {
        let net = self.net;
        let depth = net.depth();
        let nt = r.len();
        let mut delta: Vec<Vec<Array2<f64>>> = vec![vec![Array2::zeros((0, 0)); depth + 1]; nt];
        let mut dd: Vec<Vec<Array2<f64>>> = vec![vec![Array2::zeros((0, 0)); depth]; nt];
        for (i, ri) in r.into_iter().enumerate() {
            delta[i][depth] = ri;
        }
        for h in (2..=depth + 1).rev() {
            let l = &net.layers()[h - 1];
            let views: Vec<ArrayView2<f64>> = delta.iter().map(|di| di[h - 1].view()).collect();
            let lin = self.bwd_lin(h, &views, st, s);
            for (i, mut d) in lin.into_iter().enumerate() {
                d *= l.w_scale;
                delta[i][h - 2] = &d * &dphi[i][h - 2];
                dd[i][h - 2] = d;
            }
        }
        (delta, dd)
    }
}

/// The inner loop of every task in lock-step: support caches and low-rank corrections.
fn inner_states(ctx: &Ctx<'_, '_>, tasks: &[Task], cfg: &MamlConfig) -> Vec<TaskState> {
    let net = ctx.net;
    let nl = net.depth() + 1;
    let has_b = net.sigma_b.is_some();
    let layers = net.layers();
    let mut st: Vec<TaskState> = tasks
        .iter()
        .map(|t| TaskState {
            steps: Vec::new(),
            u: layers.iter().map(|l| Array2::zeros((0, l.n_out))).collect(),
            v: layers.iter().map(|l| Array2::zeros((0, l.n_in))).collect(),
            db: layers.iter().map(|l| Array1::zeros(l.n_out)).collect(),
            m: t.xs.nrows(),
        })
        .collect();
    for s in 0..cfg.inner_steps() {
        let (a, z, dphi, delta, d) = {
            let refs: Vec<&TaskState> = st.iter().collect();
            let (a, z, dphi, out) =
                ctx.forward(tasks.iter().map(|t| t.xs.clone()).collect(), &refs, s);
            let r: Vec<Array2<f64>> = out.iter().zip(tasks).map(|(o, t)| o - &t.ys).collect();
            let (delta, d) = ctx.backward(r, &dphi, &refs, s);
            (a, z, dphi, delta, d)
        };
        for (i, (((ai, zi), dpi), (de, di))) in a
            .into_iter()
            .zip(z)
            .zip(dphi)
            .zip(delta.into_iter().zip(d))
            .enumerate()
        {
            let t = &mut st[i];
            for h in 1..=nl {
                append_rows(&mut t.u[h - 1], de[h - 1].view());
                append_rows(&mut t.v[h - 1], ai[h - 1].view());
                if has_b {
                    let cs = de[h - 1].sum_axis(Axis(0));
                    t.db[h - 1].scaled_add(-cfg.inner_lr() * layers[h - 1].b_scale, &cs);
                }
            }
            t.steps.push(StepCache {
                a: ai,
                z: zi,
                dphi: dpi,
                delta: de,
                d: di,
            });
        }
    }
    st
}

/// Back-propagate factored parameter cotangents through the inner loop,
/// g_k ← (I − λ H_s^{(owner k)}) g_k for s = τ−1..0; `st[k]` is the task state of cotangent k.
fn backprop_factored(ctx: &Ctx<'_, '_>, st: &[&TaskState], g: &mut [Factored], cfg: &MamlConfig) {
    if cfg.order != Order::Second || cfg.inner_lr() == 0.0 {
        return;
    }
    let net = ctx.net;
    let depth = net.depth();
    let nl = depth + 1;
    let act = net.activation;
    let curved = act.has_curvature();
    let has_b = net.sigma_b.is_some();
    let layers = net.layers();
    let lr = cfg.inner_lr();
    let nt = g.len();
    for s in (0..cfg.inner_steps()).rev() {
        let ranks: Vec<Vec<usize>> = g
            .iter()
            .map(|gi| gi.p.iter().map(|p| p.nrows()).collect())
            .collect();
        // R-forward
        let mut ra: Vec<Vec<Array2<f64>>> = vec![Vec::new(); nt]; // RA^1..RA^L
        let mut rz: Vec<Vec<Array2<f64>>> = vec![Vec::new(); nt];
        let mut rf: Vec<Array2<f64>> = Vec::new();
        for h in 1..=nl {
            let l = &layers[h - 1];
            let lin = if h > 1 {
                let views: Vec<ArrayView2<f64>> = ra.iter().map(|r| r[h - 2].view()).collect();
                Some(ctx.fwd_lin(h, &views, st, s))
            } else {
                None
            };
            let zs: Vec<Array2<f64>> = (0..nt)
                .into_par_iter()
                .map(|i| {
                    let sc = &st[i].steps[s];
                    let k = ranks[i][h - 1];
                    let pg = g[i].p[h - 1].slice(s![0..k, ..]);
                    let qg = g[i].q[h - 1].slice(s![0..k, ..]);
                    // A^{h−1} Vᵀ = (A^{h−1} Qᵀ) P
                    let aq_ = mt_seq(sc.a[h - 1].view(), qg);
                    let mut zi = match &lin {
                        Some(lv) => lv[i].clone(),
                        None => Array2::zeros((sc.a[0].nrows(), l.n_out)),
                    };
                    acc_seq(&mut zi, aq_.view(), pg, 1.0);
                    zi *= l.w_scale;
                    if has_b {
                        let bb = &g[i].b[h - 1] * l.b_scale;
                        zi += &bb.view().insert_axis(Axis(0));
                    }
                    zi
                })
                .collect();
            for (i, zi) in zs.into_iter().enumerate() {
                if h <= depth {
                    ra[i].push(&zi * &st[i].steps[s].dphi[h - 1]);
                    rz[i].push(zi);
                } else {
                    rf.push(zi);
                }
            }
        }
        // R-backward
        let mut rdelta: Vec<Array2<f64>> = rf;
        for h in (1..=nl).rev() {
            let l = &layers[h - 1];
            let lin = if h > 1 {
                let views: Vec<ArrayView2<f64>> = rdelta.iter().map(|r| r.view()).collect();
                Some(ctx.bwd_lin(h, &views, st, s))
            } else {
                None
            };
            let next: Vec<Option<Array2<f64>>> = g
                .par_iter_mut()
                .enumerate()
                .map(|(i, gi)| {
                    let sc = &st[i].steps[s];
                    let dlt = &sc.delta[h - 1];
                    let rdl = &rdelta[i];
                    let k = ranks[i][h - 1];
                    let mut out = None;
                    if h > 1 {
                        // RD = s_h (RΔ W_s + Δ V), Δ V = (Δ Pᵀ) Q with the direction before this step
                        let mut rd = lin.as_ref().expect("h > 1")[i].clone();
                        {
                            let pg = gi.p[h - 1].slice(s![0..k, ..]);
                            let qg = gi.q[h - 1].slice(s![0..k, ..]);
                            let dp_ = mt_seq(dlt.view(), pg);
                            acc_seq(&mut rd, dp_.view(), qg, 1.0);
                        }
                        rd *= l.w_scale;
                        rd *= &sc.dphi[h - 2];
                        if curved {
                            ndarray::Zip::from(&mut rd)
                                .and(&sc.d[h - 2])
                                .and(&sc.z[h - 2])
                                .and(&rz[i][h - 2])
                                .for_each(|r, &dd, &zz, &rr| *r += dd * act.d2phi(zz) * rr);
                        }
                        out = Some(rd);
                    }
                    // g ← g − λ Hv: weight factors −λ s_h [RΔ; Δ]ᵀ [A; RA], bias −λ β 1ᵀRΔ
                    let coef = -lr * l.w_scale;
                    append_rows(&mut gi.p[h - 1], (rdl * coef).view());
                    append_rows(&mut gi.q[h - 1], sc.a[h - 1].view());
                    if h > 1 {
                        append_rows(&mut gi.p[h - 1], (dlt * coef).view());
                        append_rows(&mut gi.q[h - 1], ra[i][h - 2].view());
                    }
                    if has_b {
                        let cs = rdl.sum_axis(Axis(0));
                        gi.b[h - 1].scaled_add(-lr * l.b_scale, &cs);
                    }
                    out
                })
                .collect();
            if h > 1 {
                rdelta = next.into_iter().map(|o| o.expect("h > 1")).collect();
            }
        }
    }
}

/// Meta-loss and meta-gradient, full adaptation, by the factored algorithm (module docs).
/// Inputs assumed checked.
pub(crate) fn meta_loss_grad_lowrank(
    net: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> (f64, Array1<f64>) {
    let ctx = Ctx {
        net,
        theta,
        lr: cfg.inner_lr(),
    };
    let nl = net.depth() + 1;
    let layers = net.layers();
    let st = inner_states(&ctx, tasks, cfg);
    let refs: Vec<&TaskState> = st.iter().collect();
    let tau = cfg.inner_steps();
    let (aq, _zq, dphiq, outq) =
        ctx.forward(tasks.iter().map(|t| t.xq.clone()).collect(), &refs, tau);
    let rq: Vec<Array2<f64>> = outq.iter().zip(tasks).map(|(o, t)| o - &t.yq).collect();
    let loss: f64 = rq
        .iter()
        .map(|r| 0.5 * r.iter().map(|v| v * v).sum::<f64>())
        .sum();
    let (deltaq, _) = ctx.backward(rq, &dphiq, &refs, tau);
    let mut g: Vec<Factored> = deltaq
        .iter()
        .zip(&aq)
        .map(|(dq, a)| Factored {
            p: (1..=nl)
                .map(|h| &dq[h - 1] * layers[h - 1].w_scale)
                .collect(),
            q: (1..=nl).map(|h| a[h - 1].clone()).collect(),
            b: (1..=nl)
                .map(|h| dq[h - 1].sum_axis(Axis(0)) * layers[h - 1].b_scale)
                .collect(),
        })
        .collect();
    backprop_factored(&ctx, &refs, &mut g, cfg);

    // assemble the dense meta-gradient: one GEMM per layer over all tasks' factors
    let mut grad = Array1::zeros(net.n_params());
    for h in 1..=nl {
        let l = &layers[h - 1];
        let ps: Vec<ArrayView2<f64>> = g.iter().map(|gi| gi.p[h - 1].view()).collect();
        let qs: Vec<ArrayView2<f64>> = g.iter().map(|gi| gi.q[h - 1].view()).collect();
        let p = concatenate(Axis(0), &ps).expect("same columns");
        let q = concatenate(Axis(0), &qs).expect("same columns");
        {
            let gw = grad.slice_mut(s![l.w_range()]);
            let mut gw = gw
                .into_shape_with_order((l.n_out, l.n_in))
                .expect("contiguous");
            crate::net::backward::gemm_w_into(&mut gw, false, p.view(), q.view(), 1.0);
        }
        if let Some(r) = l.b_range() {
            let mut gb = grad.slice_mut(s![r]);
            for gi in &g {
                gb += &gi.b[h - 1];
            }
        }
    }
    (loss, grad)
}

/// Empirical MNK Φ̂ = J_F J_Fᵀ without forming J_F (full adaptation). Each meta-Jacobian row
/// (task i, query point j, output c) is the factored cotangent obtained from the one-hot query
/// cotangent e_{j,c} (rank 1 per layer: s_h Δ_q^h[j] ⊗ A_q^{h−1}[j]) back-propagated through the
/// inner loop ([`backprop_factored`], rank 1 + 2mτ per layer). For two rows a, b with weight
/// factors (P_a, Q_a), (P_b, Q_b): ⟨P_aᵀQ_a, P_bᵀQ_b⟩_F = Σ (P_a P_bᵀ) ⊙ (Q_a Q_bᵀ), so per layer
/// Φ̂ += blocksum((P Pᵀ) ⊙ (Q Qᵀ)) over all rows' stacked factors, plus the bias Gram B Bᵀ.
/// Row layout of [`super::meta_jacobian`]. Inputs assumed checked.
pub(crate) fn empirical_mnk_lowrank(
    net: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> Array2<f64> {
    let ctx = Ctx {
        net,
        theta,
        lr: cfg.inner_lr(),
    };
    let nl = net.depth() + 1;
    let k = net.k_out;
    let layers = net.layers();
    let st = inner_states(&ctx, tasks, cfg);
    let refs: Vec<&TaskState> = st.iter().collect();
    let tau = cfg.inner_steps();
    let (aq, _zq, dphiq, _outq) =
        ctx.forward(tasks.iter().map(|t| t.xq.clone()).collect(), &refs, tau);
    // one backward per output c with cotangent E_c (rows independent): Δ_q^h[j] for e_{j,c}
    let mut owners: Vec<&TaskState> = Vec::new();
    let mut g: Vec<Factored> = Vec::new();
    let deltas: Vec<Vec<Vec<Array2<f64>>>> = (0..k)
        .map(|c| {
            let cots: Vec<Array2<f64>> = tasks
                .iter()
                .map(|t| {
                    let mut e = Array2::zeros((t.xq.nrows(), k));
                    e.column_mut(c).fill(1.0);
                    e
                })
                .collect();
            ctx.backward(cots, &dphiq, &refs, tau).0
        })
        .collect();
    for (i, t) in tasks.iter().enumerate() {
        for j in 0..t.xq.nrows() {
            for dc in deltas.iter() {
                owners.push(refs[i]);
                g.push(Factored {
                    p: (1..=nl)
                        .map(|h| &dc[i][h - 1].slice(s![j..j + 1, ..]) * layers[h - 1].w_scale)
                        .collect(),
                    q: (1..=nl)
                        .map(|h| aq[i][h - 1].slice(s![j..j + 1, ..]).to_owned())
                        .collect(),
                    b: (1..=nl)
                        .map(|h| dc[i][h - 1].row(j).to_owned() * layers[h - 1].b_scale)
                        .collect(),
                });
            }
        }
    }
    backprop_factored(&ctx, &owners, &mut g, cfg);
    let rows = g.len();
    let mut phi = Array2::<f64>::zeros((rows, rows));
    for h in 1..=nl {
        let l = &layers[h - 1];
        let ps: Vec<ArrayView2<f64>> = g.iter().map(|gi| gi.p[h - 1].view()).collect();
        let qs: Vec<ArrayView2<f64>> = g.iter().map(|gi| gi.q[h - 1].view()).collect();
        let offs: Vec<usize> = std::iter::once(0)
            .chain(ps.iter().scan(0, |acc, p| {
                *acc += p.nrows();
                Some(*acc)
            }))
            .collect();
        let p = concatenate(Axis(0), &ps).expect("same columns");
        let q = concatenate(Axis(0), &qs).expect("same columns");
        let mut m = matmul_t(p.view(), p.view());
        m *= &matmul_t(q.view(), q.view());
        for a in 0..rows {
            for b in 0..=a {
                let v = m
                    .slice(s![offs[a]..offs[a + 1], offs[b]..offs[b + 1]])
                    .sum();
                phi[[a, b]] += v;
            }
        }
        if l.b_offset.is_some() {
            for a in 0..rows {
                for b in 0..=a {
                    phi[[a, b]] += g[a].b[h - 1].dot(&g[b].b[h - 1]);
                }
            }
        }
    }
    for a in 0..rows {
        for b in 0..a {
            phi[[b, a]] = phi[[a, b]];
        }
    }
    phi
}
