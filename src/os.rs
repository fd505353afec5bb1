//! The few operating-system calls Arbor makes about processes, in one place and without a
//! shell: is a process alive (and is it the program we think), send a signal to a process
//! or a process group.

use std::path::Path;

/// Whether process `pid` is alive (a zombie is not), and with `comm`, whether its command
/// name starts with it (so a recycled pid of another program does not count). Reads
/// `/proc` where there is one, else asks the kernel with signal 0.
pub fn process_alive(pid: u32, comm: Option<&str>) -> bool {
    let proc_dir = Path::new("/proc");
    if proc_dir.is_dir() {
        // `/proc/PID/stat` is "PID (comm) STATE …"; a killed process not yet reaped is
        // a zombie (Z) and writes nothing any more.
        return std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat"))
            .ok()
            .and_then(|stat| {
                let (head, rest) = stat.rsplit_once(')')?;
                let state = rest.trim_start().chars().next()?;
                let named = head.split_once('(')?.1;
                Some(comm.is_none_or(|c| named.starts_with(c)) && !matches!(state, 'Z' | 'X' | 'x'))
            })
            .unwrap_or(false);
    }
    // No /proc (macOS): signal 0 checks existence and permission, sends nothing.
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 has no effect on the target.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Sends `signal` to process `pid`, or with a negative `pid`, to the process group.
/// `false` when there was nobody to signal.
pub fn signal(pid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) takes plain integers; a pid that is gone is an error, not UB.
    unsafe { libc::kill(pid, signal) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_child_is_not() {
        assert!(process_alive(std::process::id(), None));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid, None));
        assert!(!process_alive(std::process::id(), Some("no-such-program")));
    }
}
