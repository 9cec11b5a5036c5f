//! Standard output and error that a closed pipe ends quietly, as `ls | head`
//! ends: `println!` panics on `EPIPE` (Rust ignores SIGPIPE), so every line
//! the CLI prints goes through [`outln!`]/[`errln!`] here, which note a
//! closed pipe instead. The command carries on to its end (a run still
//! records what it did) and `main` then dies by SIGPIPE. The signal is
//! restored only at that last moment: an alert `command` that exits without
//! reading its input, or a client of `keel serve` that hangs up, must never
//! kill the process.

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);
static FAILED: OnceLock<String> = OnceLock::new();

/// Prints a line on stdout (a result).
macro_rules! outln {
    () => { $crate::out::print_out(format_args!("\n")) };
    ($($t:tt)*) => { $crate::out::print_out(format_args!("{}\n", format_args!($($t)*))) };
}

/// Prints on stdout without a newline.
macro_rules! out {
    ($($t:tt)*) => { $crate::out::print_out(format_args!($($t)*)) };
}

/// Prints a line on stderr (an error, a notice).
macro_rules! errln {
    () => { $crate::out::print_err(format_args!("\n")) };
    ($($t:tt)*) => { $crate::out::print_err(format_args!("{}\n", format_args!($($t)*))) };
}

pub fn print_out(args: fmt::Arguments) {
    let r = io::stdout().lock().write_fmt(args);
    note(r, "stdout");
}

pub fn print_err(args: fmt::Arguments) {
    let r = io::stderr().lock().write_fmt(args);
    note(r, "stderr");
}

/// Remembers how a write to stdout or stderr failed: a closed pipe ends the
/// command quietly; any other error is reported when it ends.
fn note<T>(r: io::Result<T>, name: &str) {
    if let Err(e) = r {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
        } else {
            let _ = FAILED.set(format!("writing to {name}: {e}"));
        }
    }
}

/// Stdout as a writer (an output file `-`, an export) whose errors are noted
/// as [`outln!`]'s are, and still returned to the caller.
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = io::stdout().write(buf);
        if let Err(e) = &r {
            note::<()>(Err(io::Error::new(e.kind(), e.to_string())), "stdout");
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = io::stdout().flush();
        if let Err(e) = &r {
            note::<()>(Err(io::Error::new(e.kind(), e.to_string())), "stdout");
        }
        r
    }
}

/// Whether a reader of stdout or stderr went away.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// A write to stdout or stderr that failed for another reason than a closed pipe.
pub fn failed() -> Option<&'static str> {
    FAILED.get().map(String::as_str)
}

/// Ends the process as a program killed by the closed pipe would end: by
/// SIGPIPE on Unix (the shell reports 141), elsewhere with status 0.
pub fn die_of_closed_pipe() -> ! {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition and raising it in this
    // single remaining moment of the process touches no Rust state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(0)
}
