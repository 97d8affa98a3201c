//! [`init`]: a rank handle kept for as long as the caller likes (BlueFog's `bf.init()`),
//! for programs and notebook engines that call collectives from many places instead of
//! from one closure. It uses the same selection point as [`run`](crate::run) and never
//! starts more than the one rank of this process.

use crate::ops::{Comm, Op};
use crate::transport::{connect, Want};
use crate::{launched_size, Config, Error, Fog, Result};

/// This process's rank handle. Under `mpirun` (and on fogkit's MPI notebook engines,
/// `:engines 4`) it joins the MPI job, so every process must call it, and the handle
/// lives on between calls and cells; without `mpirun` it is rank 0 of a job of one.
///
/// ```
/// let bf = fogkit::init().unwrap();
/// if !fogkit::launched_by_mpirun() {
///     assert_eq!((bf.rank(), bf.size()), (0, 1));
/// }
/// assert_eq!(bf.allreduce(&[2.0_f64]).unwrap(), [2.0]);
/// ```
pub fn init() -> Result<Fog> {
    init_with(Config::default())
}

/// [`init`] with a [`Config`] (its timeout and machine grouping; a timeline needs
/// [`run_with`](crate::run_with)).
pub fn init_with(config: Config) -> Result<Fog> {
    super::memory::keep_freed_memory();
    let want = Want {
        ranks: launched_size().unwrap_or(1),
        timeout: config.timeout,
        local_size: config.local_size,
    };
    let mut here = connect::<Op>(&want)?;
    if here.len() != 1 {
        return Err(Error::InvalidArgument(format!(
            "expected one rank in this process, found {}",
            here.len()
        )));
    }
    Ok(Fog::new(Comm::new(here.remove(0))))
}
