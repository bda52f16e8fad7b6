//! Element types accepted for probability vectors: f32 and f64, both borrowed without a copy.
//! All arithmetic is done in f64 after `to_f64()`.

/// A float element type of a probability vector.
pub trait Real: Copy + Send + Sync + PartialOrd + 'static {
    /// Allowed |Σ v − 1| for a vector of this type to count as normalised. f32 inputs (softmax
    /// outputs of a float32 model) get a looser tolerance than f64 inputs.
    const NORM_TOL: f64;
    const DTYPE: &'static str;
    fn to_f64(self) -> f64;
}

impl Real for f64 {
    const NORM_TOL: f64 = 1e-6;
    const DTYPE: &'static str = "float64";
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    const NORM_TOL: f64 = 1e-4;
    const DTYPE: &'static str = "float32";
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}
