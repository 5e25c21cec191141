//! Buffers past the adapter's limits. wgpu treats a binding larger than the device allows as a
//! fatal validation error, so the allocator refuses such a buffer first, by unwinding with a
//! [`BufferTooLarge`] that [`catch_device_limits`] turns back into an error for the caller (who
//! knows which config key to blame). The unwinding starts from the one allocation function
//! instead of threading `Result` through every tensor op.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Once;

/// A buffer the adapter cannot bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a buffer of {} MiB, past this adapter's {} MiB storage binding limit", .bytes >> 20, .limit >> 20)]
pub struct BufferTooLarge {
    /// The bytes asked for.
    pub bytes: u64,
    /// The largest binding the adapter allows.
    pub limit: u64,
}

thread_local! {
    /// Inside `catch_device_limits`, whose caller reports the error itself.
    static CAUGHT: Cell<bool> = const { Cell::new(false) };
}

/// Unwinds with `BufferTooLarge`; the panic hook prints it as a sentence, or nothing when caught.
pub(crate) fn refuse(bytes: u64, limit: u64) -> ! {
    install_hook();
    std::panic::panic_any(BufferTooLarge { bytes, limit })
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| match info.payload().downcast_ref::<BufferTooLarge>() {
            Some(_) if CAUGHT.with(Cell::get) => {}
            Some(e) => eprintln!("shadergan: {e}; use smaller batches, widths or images"),
            None => previous(info),
        }));
    });
}

/// Runs `f`, turning a buffer past the adapter's limits into an error. The device stays usable:
/// the refused buffer was never created and nothing that needed it was recorded.
pub fn catch_device_limits<T>(f: impl FnOnce() -> T) -> Result<T, BufferTooLarge> {
    install_hook();
    let was = CAUGHT.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CAUGHT.with(|c| c.set(was));
    match result {
        Ok(v) => Ok(v),
        Err(payload) => match payload.downcast::<BufferTooLarge>() {
            Ok(e) => Err(*e),
            Err(other) => resume_unwind(other),
        },
    }
}
