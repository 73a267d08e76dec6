//! The collector's memory allocator: jemalloc, set as the global allocator in
//! `src/main.rs` (the library leaves the choice to the binary), with [`JEMALLOC_CONF`].
//!
//! Measured with `panoptes bench --devices 1000` (48-port switches, 60 s interval, steady
//! part of the run): glibc malloc spent about a third of the collector's CPU in
//! `_int_malloc`, `malloc_consolidate` and `_int_free` (polls allocate and free many small
//! metric strings, and the node's threads each churned through their own arena), even with
//! its arenas capped at two and a periodic `malloc_trim`, which the first builds did.
//! mimalloc's per-thread free lists took the CPU per poll from 5.9 to 3.9 ms, with the
//! same resident memory. At 10,000 devices mimalloc then held ≈80 MB beyond the live heap
//! (pages freed and waiting out its purge delay, and pages kept by long-lived blocks),
//! whatever its options; jemalloc with two arenas and time-based purging by a background
//! thread holds ≈25 MB beyond it at the same CPU per poll (README, item 50).

use std::ffi::{c_char, c_void};

/// A C string for jemalloc's `malloc_conf` symbol: a thin pointer, as C declares it
/// (`const char *`).
#[repr(transparent)]
pub struct MallocConf(*const c_char);

// SAFETY: it points at a static, immutable, NUL-terminated string.
unsafe impl Sync for MallocConf {}

/// jemalloc's settings: two arenas (one per core of a small box: the default, four per
/// core, spread the threads' blocks over eight and kept each one's freed pages apart); a
/// background thread purging freed pages (not the allocating threads, mid-poll); dirty
/// pages given back after 300 ms, and at once from there (`muzzy` pages, lazily freed
/// with MADV_FREE, still count in RSS until the kernel wants them); thread caches half the
/// default depth and only for blocks up to 4 KiB (17 threads each kept ≈0.5 MB of freed
/// blocks: 9.3 MB in all at 10,000 devices). Together with the store cache (then 8 MiB), at
/// 10,000 devices (`panoptes bench`, 30 s, 150 s, one run each): RSS 190.4 -> 177.5 (cache)
/// -> 172.5 (thread caches) -> 169.5 MB (300 ms), 1.98 / 2.09 / 2.10 / 2.18 ms a poll
/// (runs here move ±10%). One arena instead of two: no smaller, 2.37 ms.
pub const JEMALLOC_CONF: MallocConf = MallocConf(
    c"narenas:2,background_thread:true,dirty_decay_ms:300,muzzy_decay_ms:0,\
      lg_tcache_nslots_mul:-1,tcache_max:4096"
        .as_ptr(),
);

/// `mallctl(name, old, old_len, new, new_len)`; the errno-style code when it fails.
///
/// # Safety
/// `old`/`old_len` and `new`/`new_len` must be what `name` expects (jemalloc's manual).
unsafe fn mallctl(
    name: &std::ffi::CStr,
    old: *mut c_void,
    old_len: *mut usize,
    new: *mut c_void,
    new_len: usize,
) -> Result<(), i32> {
    // SAFETY: passed on from the caller; `name` is NUL-terminated.
    match unsafe { tikv_jemalloc_sys::mallctl(name.as_ptr(), old, old_len, new, new_len) } {
        0 => Ok(()),
        code => Err(code),
    }
}

/// `name`'s value, after writing `new` to it when given.
///
/// # Safety
/// `name`'s value must be a `T` (jemalloc's manual).
unsafe fn mallctl_value<T: Copy + Default>(
    name: &std::ffi::CStr,
    new: Option<T>,
) -> Result<T, i32> {
    let mut old = T::default();
    let mut old_len = std::mem::size_of::<T>();
    let mut new = new;
    let (new_ptr, new_len) = match &mut new {
        Some(v) => ((v as *mut T).cast(), std::mem::size_of::<T>()),
        None => (std::ptr::null_mut(), 0),
    };
    // SAFETY: `old` and `new` are live `T`s with their sizes given; `T` is what `name`
    // holds (the caller's contract).
    unsafe {
        mallctl(
            name,
            (&raw mut old).cast(),
            &raw mut old_len,
            new_ptr,
            new_len,
        )
    }?;
    Ok(old)
}

/// Returns to the OS, now, the pages the allocator holds freed (every arena's), and this
/// thread's cached blocks. For work that allocates a lot at once and rarely (an inflated
/// Produce request): freed pages otherwise go back a second later, by the background
/// thread, and another burst could come on top of them. Cheap enough to call after a
/// request, too dear to call after every poll. Under another global allocator it touches
/// only jemalloc's (then unused) arenas.
pub fn give_back_freed() {
    // 4096: MALLCTL_ARENAS_ALL.
    for name in [c"thread.tcache.flush", c"arena.4096.purge"] {
        // SAFETY: both take no value and return none.
        let _ = unsafe {
            mallctl(
                name,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
    }
}

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering::Relaxed};

/// A global allocator that counts the bytes its callers hold (`A` does the work), so
/// `/metrics` and `panoptes bench` can tell the live heap from what the allocator keeps.
///
/// Each thread counts in a slot of its own with a plain load and store (no locked
/// instruction: only that thread writes the slot), summed by readers; the 64th thread and
/// later share one slot counted atomically. A free may be counted in another thread's
/// slot than its allocation: only the sum means anything. Cost: a thread-local read and an
/// unlocked add per allocation and per free, ≈10,000 of each in a 48-port poll, so about
/// 10–20 µs of a poll's ≈2,200 (an estimate: below the run-to-run noise of
/// `panoptes bench`, ±5%).
pub struct Counting<A>(pub A);

const SLOTS: usize = 64;
const SHARED_SLOT: usize = SLOTS - 1;

/// One cache line per slot, so threads counting side by side do not share a line.
#[repr(align(64))]
struct Slot(AtomicIsize);

static COUNTS: [Slot; SLOTS] = [const { Slot(AtomicIsize::new(0)) }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread's slot (usize::MAX: not taken yet). A `const` Cell without a
    /// destructor: reading it never allocates nor registers anything.
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn count(delta: isize) {
    let slot = MY_SLOT
        .try_with(|s| {
            let mine = s.get();
            if mine != usize::MAX {
                return mine;
            }
            let taken = NEXT_SLOT.fetch_add(1, Relaxed).min(SHARED_SLOT);
            s.set(taken);
            COUNTING.store(true, Relaxed);
            taken
        })
        .unwrap_or(SHARED_SLOT);
    let counter = &COUNTS[slot].0;
    if slot == SHARED_SLOT {
        counter.fetch_add(delta, Relaxed);
    } else {
        counter.store(counter.load(Relaxed).wrapping_add(delta), Relaxed);
    }
}

fn signed(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

// SAFETY: every method forwards to `A` unchanged and only adds counting, which neither
// allocates nor unwinds.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            count(signed(layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            count(signed(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.dealloc(ptr, layout) };
        count(-signed(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(signed(new_size).wrapping_sub(signed(layout.size())));
        }
        p
    }
}

/// Bytes the program holds from the global allocator now, when it is [`Counting`] (the
/// binary's is); None otherwise (a library test, another allocator).
pub fn heap_in_use() -> Option<u64> {
    if !COUNTING.load(Relaxed) {
        return None;
    }
    let sum: isize = COUNTS.iter().map(|s| s.0.load(Relaxed)).sum();
    // Slots are read one by one while others count: a sum can be a little off, never
    // below nothing.
    Some(u64::try_from(sum).unwrap_or(0))
}

/// Bytes of resident pages jemalloc maps now (its own count, `stats.resident`): what it
/// holds for the program, plus its size-class rounding, its metadata, and freed pages not
/// yet given back. 0 when jemalloc cannot tell (its statistics not built in). Under another
/// global allocator (a library test) it counts jemalloc's own, then unused, arenas.
pub fn allocator_committed() -> u64 {
    // SAFETY: `epoch` is a u64 (writing it refreshes the statistics), `stats.resident` a
    // size_t.
    let resident = unsafe {
        mallctl_value::<u64>(c"epoch", Some(1))
            .and_then(|_| mallctl_value::<usize>(c"stats.resident", None))
    };
    resident.map_or(0, |r| r as u64)
}

/// A `/proc/PID/status` field given in kB (`VmRSS:`, `RssAnon:`, ...), None if absent.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Where the process's memory goes, in bytes. `rss = rss_anon + rss_file (+ shmem)`:
/// `rss_file` is file pages mapped and touched (the binary, the store's files);
/// `rss_anon` is the heap in use plus `allocator_retained` (resident anonymous memory
/// holding no live allocation: free pages the allocator has not given back yet, size-class
/// rounding, thread stacks); the heap in use is the rate state plus everything else the
/// program holds (`heap_other`: the store's page cache, the schedule, the resources,
/// buffers in flight). `allocator_committed` is jemalloc's own count of the resident pages
/// it maps. `heap_in_use` is
/// what was asked for, touched or not: sled allocates 21 MiB of metric histograms at
/// start that are never written and never resident (heaptrack), so on a small fleet the
/// heap in use exceeds the anonymous RSS and `allocator_retained` reads 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Breakdown {
    pub rss: u64,
    pub rss_anon: u64,
    pub rss_file: u64,
    pub allocator_committed: u64,
    /// None when the global allocator does not count (see [`heap_in_use`]).
    pub heap_in_use: Option<u64>,
    pub allocator_retained: Option<u64>,
    pub rate_state: u64,
    pub heap_other: Option<u64>,
}

impl Breakdown {
    /// Reads this process now; `rate_state` is the rate store's own count.
    pub fn now(rate_state: u64) -> Breakdown {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        Breakdown::from_parts(&status, allocator_committed(), heap_in_use(), rate_state)
    }

    fn from_parts(status: &str, committed: u64, in_use: Option<u64>, rate_state: u64) -> Breakdown {
        let kb = |field: &str| status_kib(status, field).map_or(0, |kb| kb * 1024);
        let rss_anon = kb("RssAnon:");
        Breakdown {
            rss: kb("VmRSS:"),
            rss_anon,
            rss_file: kb("RssFile:"),
            allocator_committed: committed,
            heap_in_use: in_use,
            allocator_retained: in_use.map(|u| rss_anon.saturating_sub(u)),
            rate_state,
            heap_other: in_use.map(|u| u.saturating_sub(rate_state)),
        }
    }

    /// `(part, bytes)` for `panoptes_memory_bytes{part=...}`, the parts that are known.
    pub fn parts(&self) -> Vec<(&'static str, u64)> {
        let mut out = vec![
            ("rss", self.rss),
            ("rss_anon", self.rss_anon),
            ("rss_file", self.rss_file),
            ("allocator_committed", self.allocator_committed),
            ("rate_state", self.rate_state),
        ];
        let optional = [
            ("heap_in_use", self.heap_in_use),
            ("allocator_retained", self.allocator_retained),
            ("heap_other", self.heap_other),
        ];
        out.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breakdown_adds_up_from_proc_status_and_the_allocator() {
        let status = "Name:\tpanoptes\nVmRSS:\t  204800 kB\nRssAnon:\t  153600 kB\n\
                      RssFile:\t   51200 kB\nRssShmem:\t       0 kB\n";
        let b = Breakdown::from_parts(status, 140 << 20, Some(100 << 20), 30 << 20);
        assert_eq!(b.rss, 200 << 20);
        assert_eq!(b.rss_anon, 150 << 20);
        assert_eq!(b.rss_file, 50 << 20);
        assert_eq!(b.allocator_committed, 140 << 20);
        assert_eq!(b.allocator_retained, Some(50 << 20));
        assert_eq!(b.heap_other, Some(70 << 20));
        let parts = b.parts();
        assert_eq!(parts.len(), 8);
        assert!(
            parts.contains(&("allocator_retained", 50 << 20)),
            "{parts:?}"
        );
        // Without a counting allocator the derived parts are left out, not made up.
        let b = Breakdown::from_parts(status, 140 << 20, None, 30 << 20);
        let names: Vec<_> = b.parts().into_iter().map(|p| p.0).collect();
        assert_eq!(
            names,
            [
                "rss",
                "rss_anon",
                "rss_file",
                "allocator_committed",
                "rate_state"
            ]
        );
    }

    #[test]
    fn the_built_in_settings_are_one_list_without_spaces() {
        // jemalloc rejects a pair with a space in it (and says so on stderr only): the
        // string's line break must not leave one.
        // SAFETY: JEMALLOC_CONF points at a static NUL-terminated string.
        let conf = unsafe { std::ffi::CStr::from_ptr(JEMALLOC_CONF.0) };
        let pairs: Vec<&str> = conf.to_str().unwrap().split(',').collect();
        assert_eq!(
            pairs,
            [
                "narenas:2",
                "background_thread:true",
                "dirty_decay_ms:300",
                "muzzy_decay_ms:0",
                "lg_tcache_nslots_mul:-1",
                "tcache_max:4096"
            ]
        );
    }

    #[test]
    fn jemalloc_answers_by_the_names_used_here() {
        // In a library test jemalloc is linked but not the global allocator: its own
        // count still reads (its metadata is resident), and it grows with a block taken
        // from it directly. A wrong name or value size would read 0.
        let before = allocator_committed();
        assert!(before > 0, "stats.resident read {before}");
        // SAFETY: a plain allocation from jemalloc, freed below with its own free.
        let block = unsafe { tikv_jemalloc_sys::malloc(8 << 20) };
        assert!(!block.is_null());
        // SAFETY: the block is 8 MiB long.
        unsafe { std::ptr::write_bytes(block.cast::<u8>(), 1, 8 << 20) };
        let during = allocator_committed();
        assert!(during >= before + (8 << 20), "{before} -> {during}");
        // SAFETY: taken from jemalloc's malloc above, freed once.
        unsafe { tikv_jemalloc_sys::free(block) };
        give_back_freed();
        let after = allocator_committed();
        assert!(after < during, "given back: {during} -> {after}");
    }

    #[test]
    fn the_counting_allocator_counts_what_it_hands_out_and_takes_back() {
        let a = Counting(std::alloc::System);
        let layout = Layout::from_size_align(1000, 8).unwrap();
        let before: isize = COUNTS.iter().map(|s| s.0.load(Relaxed)).sum();
        // SAFETY: a valid layout; the block is freed with the same layout (after realloc,
        // its new size).
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            let mid: isize = COUNTS.iter().map(|s| s.0.load(Relaxed)).sum();
            assert_eq!(mid - before, 1000);
            let q = a.realloc(p, layout, 3000);
            assert!(!q.is_null());
            let grown: isize = COUNTS.iter().map(|s| s.0.load(Relaxed)).sum();
            assert_eq!(grown - before, 3000);
            a.dealloc(q, Layout::from_size_align(3000, 8).unwrap());
        }
        let after: isize = COUNTS.iter().map(|s| s.0.load(Relaxed)).sum();
        assert_eq!(after, before);
        assert!(heap_in_use().is_some());
    }
}
