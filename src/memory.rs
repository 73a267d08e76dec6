//! The collector's memory allocator: mimalloc, set as the global allocator in
//! `src/main.rs` (the library leaves the choice to the binary).
//!
//! Measured with `panoptes bench --devices 1000` (48-port switches, 60 s interval, steady
//! part of the run): glibc malloc spent about a third of the collector's CPU in
//! `_int_malloc`, `malloc_consolidate` and `_int_free` (polls allocate and free many small
//! metric strings, and the node's threads each churned through their own arena), even with
//! its arenas capped at two and a periodic `malloc_trim`, which the first builds did.
//! mimalloc's per-thread free lists took the CPU per poll from 5.9 to 3.9 ms, with the
//! same resident memory, and it returns freed pages to the OS by itself.
