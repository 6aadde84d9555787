//! Containing a panic in a dependency that input can trigger.
//!
//! minijinja's compiler panics on some malformed templates (for one,
//! `{% import "x" as -m %}` reaches an `unreachable!()` in its code
//! generator, as of 3.1.0). A platform team's template is user input, and
//! user input must give an error, not a crash: [`contain`] turns such a
//! panic into an `Err` carrying the panic's message, without the panic
//! hook's report on standard error.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`contain`].
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
    /// The message of the last panic contained on this thread.
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Runs `f`; a panic inside it becomes `Err` with the panic's message and
/// location (`panicked at src/x.rs:1:2:\n<message>`).
///
/// Panics elsewhere, on other threads or outside `contain`, are reported by
/// the panic hook that was installed before, as before.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CONTAINED.get() {
                MESSAGE.set(Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
    let outer = CONTAINED.replace(true);
    // `f` is dropped with whatever it touched: callers pass closures over
    // data they discard on `Err`.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINED.set(outer);
    result.map_err(|_| {
        MESSAGE
            .take()
            .unwrap_or_else(|| "panicked (no message)".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::contain;

    #[test]
    fn a_panic_becomes_an_error_with_its_message_and_location() {
        assert_eq!(contain(|| 1 + 1), Ok(2));
        let err = contain(|| -> u8 { panic!("bad input {}", 7) }).expect_err("panics");
        assert!(err.contains("bad input 7"), "{err}");
        assert!(err.contains("src/panics.rs:"), "{err}");
        // Nested: the inner panic is contained; the outer call completes.
        let outer = contain(|| contain(|| -> u8 { unreachable!() }).is_err());
        assert_eq!(outer, Ok(true));
        // And the next call still works.
        assert_eq!(contain(|| "ok"), Ok("ok"));
    }
}
