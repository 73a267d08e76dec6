//! Transforms applied to a polling plugin's output before it is published (spec §4.7).

mod rate;

pub use rate::{apply_transforms, MemoryRateState, RateState, TransformReport};
