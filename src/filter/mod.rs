//! Resource filter DSL (spec §2.2).
