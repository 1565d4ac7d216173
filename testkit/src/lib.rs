//! Helpers every test binary of the workspace shares (work in progress),
//! and [`echo`], the small service the runtime's examples and tests mount.

pub mod echo;
