//! BlueFog's `win_mutex`: a lock held on some ranks' windows across several ops. A rank
//! takes a rank's mutex word (in its region) when it is free, by one exclusive access;
//! ranks are taken in ascending order, so two holders never wait for each other. Waiting
//! has the transport's deadline: a mutex held too long is an error naming its holder.

use std::time::{Duration, Instant};

use super::layout::{read_word, write_word, Layout};
use super::Window;
use crate::tensor::Element;
use crate::{Error, Result};

/// Held mutexes of a window on some ranks; released on drop. Borrows the window, so the
/// window cannot be freed while it is held.
pub struct WinMutex<'w, 'c, E: Element> {
    win: &'w Window<'c, E>,
    ranks: Vec<usize>,
}

impl<'c, E: Element> Window<'c, E> {
    /// Takes the window's mutex on `ranks` (ascending, duplicates ignored), waiting while
    /// another rank holds one (BlueFog's `win_mutex`). Every single window op is atomic on
    /// its own; the mutex makes a sequence of them atomic against other holders.
    ///
    /// ```
    /// let n = fogkit::run(2, |bf| {
    ///     let win = bf.win_create("m", &[0.0f64], false)?;
    ///     {
    ///         let _held = win.win_mutex(&[0, 1])?; // both ranks' windows, in turn
    ///     }
    ///     bf.barrier()?;
    ///     win.win_free()?;
    ///     Ok(1)
    /// })
    /// .unwrap();
    /// assert_eq!(n.iter().map(|(_, v)| v).sum::<i32>(), 2);
    /// ```
    pub fn win_mutex(&self, ranks: &[usize]) -> Result<WinMutex<'_, 'c, E>> {
        let mut ranks = ranks.to_vec();
        ranks.sort_unstable();
        ranks.dedup();
        let n = self.comm.size();
        if let Some(&r) = ranks.iter().find(|&&r| r >= n) {
            return Err(Error::InvalidArgument(format!(
                "win_mutex expected ranks below {n}, found {r}"
            )));
        }
        let mut held = WinMutex {
            win: self,
            ranks: Vec::with_capacity(ranks.len()),
        };
        for r in ranks {
            self.lock_one(r)?;
            held.ranks.push(r);
        }
        Ok(held)
    }

    fn lock_one(&self, target: usize) -> Result<()> {
        let me = self.comm.rank() as u64 + 1;
        let patience = self.comm.one_sided()?.patience();
        let start = Instant::now();
        let mut pause = Duration::from_micros(1);
        loop {
            let mut holder = 0;
            self.access(target, &mut |r| {
                holder = read_word(r, Layout::MUTEX)?;
                if holder == 0 {
                    write_word(r, Layout::MUTEX, me)?;
                }
                Ok(())
            })?;
            if holder == 0 {
                return Ok(());
            }
            if holder == me {
                return Err(Error::InvalidArgument(format!(
                    "rank {} already holds window `{}`'s mutex on rank {target}",
                    me - 1,
                    self.name
                )));
            }
            if start.elapsed() > patience {
                return Err(Error::InvalidArgument(format!(
                    "rank {} waited {:?} for window `{}`'s mutex on rank {target}, held by \
                     rank {} all along",
                    me - 1,
                    start.elapsed(),
                    self.name,
                    holder - 1
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }
}

impl<E: Element> WinMutex<'_, '_, E> {
    /// The ranks whose mutex is held.
    pub fn ranks(&self) -> &[usize] {
        &self.ranks
    }
}

impl<E: Element> Drop for WinMutex<'_, '_, E> {
    fn drop(&mut self) {
        for &r in self.ranks.iter().rev() {
            let released = self
                .win
                .access(r, &mut |reg| write_word(reg, Layout::MUTEX, 0));
            if let Err(e) = released {
                tracing::warn!(
                    "could not release window `{}`'s mutex on rank {r}: {e}",
                    self.win.name
                );
            }
        }
    }
}
