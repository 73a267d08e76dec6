//! The Generic SNMP polling DSL (spec §9): a JSON document names tables (`static`
//! values, `bulk_walk`ed or `get` OIDs) and metrics groups whose metrics and dimensions
//! are small expressions over those tables. Device-metrics enrichment plugins produce
//! the documents; `plugin_polling_generic_snmp` runs them.
//!
//! The document is compiled before any SNMP request ([`document::Document::compile`]):
//! an unknown table, an unsupported expression or transform, or a bad type is a
//! configuration error naming the plugin, the group and the metric or dimension.
//! The expression subset is documented in [`expr`].

pub mod document;
pub mod expr;
pub mod polling;

pub use document::{Document, DocumentError, SchemaVersion};
