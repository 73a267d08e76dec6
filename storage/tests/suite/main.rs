//! The shared suite: every test in these modules runs against both engines, sled and
//! memory (`<module>::sled::<test>` and `<module>::memory::<test>`).

mod fixture;

mod corrupt;
mod faults;
mod group_commit;
mod keyspace;
mod keyspace_model;
mod leases;
mod model;
mod offsets;
mod restart;
mod stats;
mod topic;
