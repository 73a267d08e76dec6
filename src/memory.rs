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

/// Returns to the OS, now, the memory this thread's heap has freed, and every page the
/// allocator had set aside to give back later. For work that allocates a lot at once and
/// rarely (an inflated Produce request): mimalloc gives freed pages back only after a
/// delay and keeps pages in the heap of the thread that freed them, so a burst spread over
/// the runtime's blocking threads would stay resident long after it was answered. Cheap
/// enough to call after a request, too dear to call after every poll.
pub fn give_back_freed() {
    // SAFETY: mi_collect takes no pointers; it only walks the allocator's own structures
    // and is safe to call from any thread at any time. Under another global allocator it
    // touches only mimalloc's (then unused) heap.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
