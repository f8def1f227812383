//! Running jobs: a fixed pool of workers over the durable queue, and the scheduler.

pub mod health;
pub mod replica;
pub mod scheduler;
pub mod worker;
