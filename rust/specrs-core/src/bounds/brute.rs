//! Brute-force references for the tests: α* as the minimum over all 2^V subsets of
//! p(H) − Pr_law[all drafts ∈ H] with the explicit law of `law::scheme_law`, and verifier
//! acceptance by simulating the verifier on every draft tuple with exact probabilities.

use crate::law::scheme_law;
use crate::names::Scheme;

pub fn normalise(v: &[f64]) -> Vec<f64> {
    let s: f64 = v.iter().sum();
    v.iter().map(|x| x / s).collect()
}

/// 1 + min_H [p(H) − Q(H)] over all subsets, Q from the explicit tuple law.
pub fn alpha(p: &[f64], q: &[f64], n: usize, scheme: Scheme) -> f64 {
    let p = normalise(p);
    let law = scheme_law(q, n, scheme).unwrap();
    crate::law::brute_alpha(&p, &law)
}

/// Pr[some draft accepted] for recursive rejection sampling, with (`wor`) or without removal of
/// each rejected draft from the draft distribution, summed over the explicit tuple law.
pub fn rrs(p: &[f64], q: &[f64], n: usize, wor: bool) -> f64 {
    let p = normalise(p);
    let q = normalise(q);
    let law = scheme_law(&q, n, if wor { Scheme::Wor } else { Scheme::Iid }).unwrap();
    let mut acc = 0.0;
    for r in 0..law.len() {
        let (mut pk, mut qk) = (p.clone(), q.clone());
        let mut rej = 1.0f64;
        for &x in law.row(r) {
            let a = (pk[x] / qk[x]).min(1.0);
            rej *= 1.0 - a;
            if rej == 0.0 {
                break;
            }
            let res: Vec<f64> = pk.iter().zip(&qk).map(|(a, b)| (a - b).max(0.0)).collect();
            pk = normalise(&res);
            if wor {
                qk[x] = 0.0;
                qk = normalise(&qk);
            }
        }
        acc += law.probs[r] * (1.0 - rej);
    }
    acc
}
