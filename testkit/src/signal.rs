//! Sending a signal to a process by pid, plain std (so `xtask` shares it).

use std::{
    io,
    process::{Command, ExitStatus},
};

/// `kill -s SIGNAL PID` (`TERM`, `INT`, `KILL`, …) through `sh`, whose
/// builtin `kill` exists even where no `kill` binary is installed (no libc
/// bindings needed: the workspace forbids `unsafe`).
pub fn send(pid: u32, signal: &str) -> io::Result<ExitStatus> {
    Command::new("sh")
        .args([
            "-c",
            "kill -s \"$1\" \"$2\"",
            "sh",
            signal,
            &pid.to_string(),
        ])
        .status()
}
