//! Untrusted chat templates (a GGUF's own, a `--template-file`) rendered in a child
//! process bounded in memory and output size.
//!
//! Fuel stops endless loops, but a few instructions can build an enormous value
//! (`{% set ns.a = ns.a ~ ns.a %}` repeated, a list added to itself), and when an
//! allocation fails Rust aborts the whole process. So such templates are rendered in a
//! child forked from this process (it has the template engine already, nothing to load),
//! with its address space limited (`RLIMIT_AS`: what it has plus [`MEMORY_LIMIT`]) and
//! its output capped at [`OUTPUT_LIMIT`]. The child serves renders over two pipes until
//! this process closes them; when a template exhausts its memory the child dies, the
//! render is a clear error naming the template and the limit, and the next render forks a
//! new child. One child per process, shared by its threads.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

/// Memory a template may use beyond what the process had when the child was made.
pub const MEMORY_LIMIT: u64 = 512 << 20;
/// The longest text a template may render.
pub const OUTPUT_LIMIT: usize = 32 << 20;

#[derive(Serialize, Deserialize)]
struct Request {
    template: String,
    context: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
enum Response {
    Ok(String),
    Err(String),
}

struct Child {
    pid: libc::pid_t,
    to: std::fs::File,
    from: BufReader<std::fs::File>,
}

static CHILD: Mutex<Option<Child>> = Mutex::new(None);

/// Why a sandboxed render failed: the template's own error, or the bound it crossed.
#[derive(Debug)]
pub enum SandboxError {
    Template(String),
    Limit(String),
}

/// Renders `template` with `context` through `render` (the in-process renderer) in the
/// sandbox child.
pub fn render(
    template: &str,
    context: serde_json::Value,
    render: fn(&str, serde_json::Value, &mut dyn Write) -> Result<(), String>,
) -> Result<String, SandboxError> {
    let mut guard = CHILD.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Some(spawn(render).map_err(|e| {
            SandboxError::Limit(format!("could not start the template sandbox: {e}"))
        })?);
    }
    let child = guard.as_mut().expect("spawned above");
    let req = Request {
        template: template.to_string(),
        context,
    };
    let exchange = |c: &mut Child| -> std::io::Result<Response> {
        let mut line = serde_json::to_vec(&req)?;
        line.push(b'\n');
        c.to.write_all(&line)?;
        c.to.flush()?;
        let mut answer = String::new();
        if c.from.read_line(&mut answer)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        serde_json::from_str(&answer).map_err(std::io::Error::other)
    };
    match exchange(child) {
        Ok(Response::Ok(text)) => Ok(text),
        Ok(Response::Err(e)) => Err(SandboxError::Template(e)),
        Err(_) => {
            // The child died: the template took more memory than allowed.
            if let Some(c) = guard.take() {
                reap(c);
            }
            Err(SandboxError::Limit(format!(
                "stopped: it needed more than {} MiB of memory",
                MEMORY_LIMIT >> 20
            )))
        }
    }
}

fn reap(c: Child) {
    drop(c.to);
    drop(c.from);
    crate::os::signal(c.pid, libc::SIGKILL);
    // SAFETY: waitpid(2) on our own child; no memory is shared.
    unsafe {
        libc::waitpid(c.pid, std::ptr::null_mut(), 0);
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The process's address space in bytes (`/proc/self/statm`), if known.
fn address_space() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Some(pages * page)
}

fn spawn(
    render: fn(&str, serde_json::Value, &mut dyn Write) -> Result<(), String>,
) -> std::io::Result<Child> {
    let (req_r, req_w) = pipe()?;
    let (resp_r, resp_w) = pipe()?;
    let limit = address_space().map(|a| a + MEMORY_LIMIT);
    // SAFETY: the child runs only `serve` (template rendering over the two pipes, on this
    // thread's copy of the process) and leaves with `_exit`, never returning into the
    // caller's code; glibc makes malloc usable after fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        drop(req_w);
        drop(resp_r);
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            serve(req_r, resp_w, limit, render)
        }))
        .map_or(2, |_| 0);
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    drop(req_r);
    drop(resp_w);
    Ok(Child {
        pid,
        to: std::fs::File::from(req_w),
        from: BufReader::new(std::fs::File::from(resp_r)),
    })
}

/// The child: bounded, quiet, serving one request per line until the pipe closes.
fn serve(
    requests: OwnedFd,
    responses: OwnedFd,
    limit: Option<u64>,
    render: fn(&str, serde_json::Value, &mut dyn Write) -> Result<(), String>,
) {
    // SAFETY: plain system calls on this process (the child): its memory limit, and its
    // standard error pointed at /dev/null so an allocation failure prints nothing.
    unsafe {
        if let Some(l) = limit {
            let r = libc::rlimit {
                rlim_cur: l,
                rlim_max: l,
            };
            libc::setrlimit(libc::RLIMIT_AS, &r);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if null >= 0 {
            libc::dup2(null, 2);
        }
    }
    let mut input = BufReader::new(std::fs::File::from(requests));
    let mut output = std::fs::File::from(responses);
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let mut out = Limited(Vec::new());
                match render(&req.template, req.context, &mut out) {
                    Ok(()) => Response::Ok(String::from_utf8_lossy(&out.0).into_owned()),
                    Err(e) => Response::Err(e),
                }
            }
            Err(e) => Response::Err(format!("bad request: {e}")),
        };
        let Ok(mut bytes) = serde_json::to_vec(&response) else {
            return;
        };
        bytes.push(b'\n');
        if output.write_all(&bytes).is_err() {
            return;
        }
    }
}

/// A buffer that refuses to grow past [`OUTPUT_LIMIT`].
pub struct Limited(pub Vec<u8>);

impl Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > OUTPUT_LIMIT {
            return Err(std::io::Error::other(format!(
                "its output is longer than the limit of {} MiB",
                OUTPUT_LIMIT >> 20
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
