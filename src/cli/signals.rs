//! Ctrl-C, SIGTERM and SIGHUP; on Windows every console control event (Ctrl-C, Ctrl-Break,
//! console close, logoff, shutdown): the first one runs the registered interrupt action (cancel
//! the sessions, stop the server); a second one exits at once with 130.
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
    ctrlc::set_handler(interrupted).map_err(|e| {
        Failure::msg(
            ExitCode::Internal,
            format!("cannot install the Ctrl-C/SIGTERM handler: {e}"),
        )
    })?;
    #[cfg(windows)]
    windows_console::install_close_handler()?;
    Ok(())
}

fn interrupted() {
    if SIGNALS_SEEN.fetch_add(1, Ordering::SeqCst) >= 1 {
        eprintln!("wdsmc: interrupted again, exiting now");
        std::process::exit(ExitCode::Cancelled.as_i32());
    }
    let action = ACTION.lock().unwrap_or_else(|poison| poison.into_inner());
    match action.as_ref() {
        Some(run) => run(),
        None => std::process::exit(ExitCode::Cancelled.as_i32()),
    }
}

/// Sets what the first interrupt does. A signal that came before this runs it at once.
pub fn on_interrupt(action: impl Fn() + Send + 'static) {
    let mut slot = ACTION.lock().unwrap_or_else(|poison| poison.into_inner());
    if SIGNALS_SEEN.load(Ordering::SeqCst) > 0 {
        action();
    }
    *slot = Some(Box::new(action));
}

/// Console close, logoff and shutdown on Windows.
///
/// ctrlc's handler answers every console event at once and runs the action on its own thread;
/// for these three events Windows ends the process as soon as a handler returns, so the cancel
/// (LEAVE to the server, partial file removed) would be cut off. This handler runs first
/// (handlers are called newest first), starts the cancel itself and then holds the event until
/// the process exits on its own, within the few seconds Windows allows. Ctrl-C and Ctrl-Break
/// are passed on to ctrlc's handler.
#[cfg(windows)]
mod windows_console {
    use std::time::Duration;

    use super::super::exit::{ExitCode, Failure};

    const CTRL_CLOSE_EVENT: u32 = 2;
    const CTRL_LOGOFF_EVENT: u32 = 5;
    const CTRL_SHUTDOWN_EVENT: u32 = 6;
    /// Windows ends the process about 5 s after a close event; leave a margin.
    const CLOSE_GRACE: Duration = Duration::from_millis(4500);

    type HandlerRoutine = unsafe extern "system" fn(u32) -> i32;

    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn SetConsoleCtrlHandler(handler: Option<HandlerRoutine>, add: i32) -> i32;
    }

    unsafe extern "system" fn on_console_event(event: u32) -> i32 {
        match event {
            CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => {
                // A panic must not unwind across the system callback.
                let _ = std::panic::catch_unwind(|| {
                    super::interrupted();
                    std::thread::sleep(CLOSE_GRACE);
                });
                1
            }
            _ => 0,
        }
    }

    pub(super) fn install_close_handler() -> Result<(), Failure> {
        // SAFETY: registers a plain function that lives for the whole program.
        let added = unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) };
        if added == 0 {
            return Err(Failure::msg(
                ExitCode::Internal,
                format!(
                    "cannot install the console close handler: {}",
                    std::io::Error::last_os_error()
                ),
            ));
        }
        Ok(())
    }
}
