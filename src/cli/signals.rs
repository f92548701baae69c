//! Ctrl-C, SIGTERM and SIGHUP (console close on Windows): the first one runs the registered
//! interrupt action (cancel the sessions, stop the server); a second one exits at once with 130.
//!
//! The handler is installed explicitly, so it also works when a non-interactive shell started
//! us in the background with SIGINT ignored.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::exit::{ExitCode, Failure};

type Action = Box<dyn Fn() + Send>;

static SIGNALS_SEEN: AtomicUsize = AtomicUsize::new(0);
static ACTION: Mutex<Option<Action>> = Mutex::new(None);

/// Installs the process-wide handler. Call once, before any session starts.
pub fn install() -> Result<(), Failure> {
    ctrlc::set_handler(|| {
        if SIGNALS_SEEN.fetch_add(1, Ordering::SeqCst) >= 1 {
            eprintln!("wdsmc: interrupted again, exiting now");
            std::process::exit(ExitCode::Cancelled.as_i32());
        }
        let action = ACTION.lock().unwrap_or_else(|poison| poison.into_inner());
        match action.as_ref() {
            Some(run) => run(),
            None => std::process::exit(ExitCode::Cancelled.as_i32()),
        }
    })
    .map_err(|e| {
        Failure::msg(
            ExitCode::Internal,
            format!("cannot install the Ctrl-C/SIGTERM handler: {e}"),
        )
    })
}

/// Sets what the first interrupt does. A signal that came before this runs it at once.
pub fn on_interrupt(action: impl Fn() + Send + 'static) {
    let mut slot = ACTION.lock().unwrap_or_else(|poison| poison.into_inner());
    if SIGNALS_SEEN.load(Ordering::SeqCst) > 0 {
        action();
    }
    *slot = Some(Box::new(action));
}
