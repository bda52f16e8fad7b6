use specrs_core::bounds::{self, iid};
use specrs_core::{Rng, Scheme, validate};
use std::time::Instant;
fn peaked(v: usize, seed: u64, temp: f64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let logits: Vec<f64> = (0..v).map(|i| -1.1 * ((i + 1) as f64).ln() + 0.7 * rng.gumbel()).collect();
    let soft = |xs: Vec<f64>| { let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = xs.iter().map(|x| ((x - m) / temp).exp()).collect(); let s: f64 = e.iter().sum();
        e.into_iter().map(|x| x / s).collect::<Vec<f64>>() };
    let q = soft(logits.iter().map(|l| l + 0.6 * rng.gumbel()).collect());
    (soft(logits), q)
}
fn time<F: FnMut() -> f64>(name: &str, mut f: F) { let mut best = f64::MAX; let mut x = 0.0; for _ in 0..100 { let t = Instant::now(); x += f(); best = best.min(t.elapsed().as_secs_f64()); } println!("{name}: {:.3} ms ({x})", best * 1e3); }
fn main() {
    let (p, q) = peaked(151_936, 1, 0.7);
    time("validate p", || validate::distribution("p", &p).unwrap());
    time("check", || bounds::prep::check(&p, &q, 4, Scheme::Iid).unwrap().0);
    time("iid value", || iid::value(&p, &q, 4, 1.0, 1.0));
    time("iid full", || bounds::optimal_acceptance(&p, &q, 4, Scheme::Iid).unwrap());
    let (p, q) = peaked(32_000, 2, 0.7);
    time("wor4", || bounds::optimal_acceptance(&p, &q, 4, Scheme::Wor).unwrap());
}
