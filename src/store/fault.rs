//! Test seam: a disk that fills up, without mounting one. `BAKCH_FAULT_DISK_FULL_AFTER=<bytes>`
//! makes every spool write fail with ENOSPC once that many bytes were written (and not given
//! back by removing their temp files). Debug builds only: a release binary ignores the variable.

#[cfg(debug_assertions)]
mod budget {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Bytes left, when the variable is set; read once.
    fn left() -> Option<&'static AtomicU64> {
        static LEFT: OnceLock<Option<AtomicU64>> = OnceLock::new();
        LEFT.get_or_init(|| {
            let n = std::env::var("BAKCH_FAULT_DISK_FULL_AFTER").ok()?.parse().ok()?;
            tracing::warn!("BAKCH_FAULT_DISK_FULL_AFTER is set: store writes will fail once it is used up");
            Some(AtomicU64::new(n))
        })
        .as_ref()
    }

    pub fn reserve(n: u64) -> std::io::Result<()> {
        match left() {
            Some(l) if l.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(n)).is_err() => {
                Err(std::io::Error::from_raw_os_error(crate::error::ENOSPC))
            }
            _ => Ok(()),
        }
    }

    pub fn give_back(n: u64) {
        if let Some(l) = left() {
            l.fetch_add(n, Ordering::SeqCst);
        }
    }

    pub fn announce() {
        let _ = left();
    }
}

#[cfg(not(debug_assertions))]
mod budget {
    pub fn reserve(_: u64) -> std::io::Result<()> {
        Ok(())
    }
    pub fn give_back(_: u64) {}
    pub fn announce() {}
}

/// Takes `n` bytes from the simulated free space, or fails with ENOSPC.
pub fn reserve(n: u64) -> std::io::Result<()> {
    budget::reserve(n)
}

/// A removed temp file frees its space again.
pub fn give_back(n: u64) {
    budget::give_back(n)
}

/// Reads the variable now, so that its warning is logged at start rather than at the first write.
pub fn announce() {
    budget::announce()
}
