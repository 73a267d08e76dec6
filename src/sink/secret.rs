//! The sink's secrets are the binary's one [`Secret`] type.

pub use crate::secret::Secret;
