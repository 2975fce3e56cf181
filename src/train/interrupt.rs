//! Ctrl-C and SIGTERM: the first one sets a flag the trainer checks after every step (it then saves
//! a checkpoint and stops); the handler is installed once per process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The process-wide interrupt flag, installing the handler on first use.
pub fn install() -> Arc<AtomicBool> {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        if let Err(e) = ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst)) {
            eprintln!("warning: Ctrl-C will stop the run without saving ({e})");
        }
        flag
    })
    .clone()
}
