//! Transforms applied to a polling plugin's output before it is published (spec §4.7).

mod rate;
mod rate_index;
mod rate_store;

pub use rate::{
    apply_transforms, MemoryRateState, RateError, RateState, RateStateError, Sample,
    TransformReport,
};
pub use rate_store::{RateStore, RateStoreError, RecordError};
