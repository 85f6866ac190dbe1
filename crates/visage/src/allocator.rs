//! How much freed memory glibc's allocator keeps.
//!
//! By default glibc gives each thread that allocates concurrently an arena of its own (up to
//! 8 per core) and returns freed memory to the system only past thresholds that grow with
//! the largest block freed. A server whose requests pass multi-megabyte images and ONNX
//! Runtime buffers between tokio's blocking threads keeps much of it. Measured with
//! `scripts/bench-enrol.sh` (200 LFW persons from 8 clients, then a burst of 100 at once;
//! 2 cores, ONNX Runtime):
//!
//! | allocator settings                          | RSS start -> after burst | persons/s |
//! |---------------------------------------------|--------------------------|-----------|
//! | glibc defaults                              | 200 -> 364-371 MiB       | 54.6-55.3 |
//! | 2 arenas, trim 8 MiB (mmap 128 KiB)         | 132 -> 224-225 MiB       | 51.8-52.0 |
//! | 2 arenas, trim 8 MiB, mmap 4 MiB (these)    | 154 -> 247-260 MiB       | 55.6-56.6 |
//!
//! Blocks of 4 MiB and more (model weights, the largest image buffers) are mapped and
//! unmapped on their own; smaller request buffers are reused from the heap, which is what
//! keeps the speed. An operator's own `MALLOC_ARENA_MAX`, `MALLOC_TRIM_THRESHOLD_` or
//! `MALLOC_MMAP_THRESHOLD_` (glibc's tunables, read at start) wins over the setting here.

/// Arenas for the whole process.
const ARENA_MAX: i32 = 2;
/// Free memory at the top of the heap beyond this is returned to the system.
const TRIM_THRESHOLD: i32 = 8 << 20;
/// Blocks this large or larger get a mapping of their own, returned when freed.
const MMAP_THRESHOLD: i32 = 4 << 20;

/// Caps glibc's arenas and fixes its trim and mmap thresholds, each unless the environment
/// already sets it. Call first thing in `main`, before other threads exist.
// The workspace denies unsafe code; these calls into libc are the exception.
#[allow(unsafe_code)]
pub fn limit_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, parameter, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENA_MAX),
        (
            "MALLOC_TRIM_THRESHOLD_",
            libc::M_TRIM_THRESHOLD,
            TRIM_THRESHOLD,
        ),
        (
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
        ),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt only sets a parameter of the allocator, before any thread.
            unsafe { libc::mallopt(parameter, value) };
        }
    }
}
