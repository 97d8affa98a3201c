//! The kernel's side of N MPI engines (what BlueFog's `ibfrun start -np N` gives
//! ipyparallel): starts `fogrun -np N ... fogkit-kernel --engine ADDR`, waits for every
//! rank to connect back, sends each cell to the ranks it is for, and hands their outputs
//! on in rank order, each line marked `[rank r]`. A rank that fails, panics or is lost is
//! named with the reason. It never leaves the job's processes behind: stopping (or
//! dropping) the engines ends the whole process tree.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::job;
use crate::link::{self, Event};
use crate::local::{Failure, Out};

/// How long the ranks have to connect back after `fogrun` starts.
const CONNECT: Duration = Duration::from_secs(60);

/// The running `fogrun` job.
pub struct Job {
    child: Mutex<Child>,
    /// `FOGKIT_ENGINE_JOB=<token>`, in the environment of every process of the job.
    tag: String,
    /// Set once the job has been ended: it is never signalled again (its pid may be
    /// another process's by then).
    ended: AtomicBool,
    /// What `fogrun` and `mpirun` printed (their last lines).
    log: Arc<Mutex<Vec<String>>>,
    /// Set when an interrupt stopped the job.
    interrupted: AtomicBool,
}

impl Job {
    /// Ends the job and every process under it.
    pub fn kill(&self) {
        let mut c = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if self.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        // While `fogrun` is not reaped its pid is its own, even if it has exited; once
        // reaped, its processes are found by their tag.
        let root = match c.try_wait() {
            Ok(None) => Some(c.id()),
            _ => None,
        };
        job::end_tree(root, &self.tag);
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Stops the job because the user interrupted the cell.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.kill();
    }

    fn exited(&self) -> Option<String> {
        if self.ended.load(Ordering::SeqCst) {
            return Some("ended".into());
        }
        let mut c = self.child.lock().unwrap_or_else(|p| p.into_inner());
        match c.try_wait() {
            Ok(Some(status)) => {
                // What it printed last is still on its way through the pipes.
                std::thread::sleep(Duration::from_millis(300));
                Some(status.to_string())
            }
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    fn log_tail(&self, lines: usize) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log[log.len().saturating_sub(lines)..].to_vec()
    }
}

/// One connected rank.
struct Rank {
    writer: TcpStream,
    host: String,
    pid: u64,
}

enum Incoming {
    Msg(Value),
    Closed(String),
}

/// N engines: one MPI job whose ranks each evaluate cells.
pub struct Engines {
    ranks: Vec<Rank>,
    job: Arc<Job>,
    events: mpsc::Receiver<(usize, Incoming)>,
    /// Why the engines stopped, once they have.
    stopped: Option<String>,
}

/// The `fogrun` to start engines with: `FOGKIT_FOGRUN`, else the one beside this
/// kernel, else the one on `PATH`.
fn fogrun() -> PathBuf {
    if let Some(p) = std::env::var_os("FOGKIT_FOGRUN") {
        return p.into();
    }
    if let Ok(me) = std::env::current_exe() {
        let beside = me.with_file_name("fogrun");
        if beside.exists() {
            return beside;
        }
    }
    "fogrun".into()
}

impl Engines {
    /// Starts `n` engines with `fogrun` options `args` (e.g. `--hostfile F`), runs the
    /// set-up lines on rank 0 first (it compiles the shared dependencies into evcxr's
    /// cache) and then on the others, and reports where each rank runs.
    /// `started` gets the job as soon as it runs (so an interrupt during the start-up
    /// reaches it).
    pub fn start(
        n: usize,
        args: &[String],
        init: &[String],
        started: &dyn Fn(Arc<Job>),
        emit: &mut dyn FnMut(Out),
    ) -> Result<Engines, Failure> {
        let fail = |what: String| Failure::new("engines", what);
        let bind = std::env::var("FOGKIT_KERNEL_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
        let listener = TcpListener::bind(&bind)
            .map_err(|e| fail(format!("could not listen on {bind} for the engines: {e}")))?;
        let addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
        let token = uuid::Uuid::new_v4().to_string();
        let me = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
        let fogrun = fogrun();
        let mut cmd = Command::new(&fogrun);
        // The kernel binary does not link MPI itself: its cells' process does.
        cmd.arg("-np")
            .arg(n.to_string())
            .arg("--skip-mpi-check")
            .args(args)
            .arg(&me)
            .arg("--engine")
            .arg(addr.to_string())
            .arg("--token")
            .arg(&token)
            // Each engine takes a build directory of its own (`slot`), not the kernel's.
            .env_remove("EVCXR_TMPDIR")
            .env("FOGKIT_ENGINE_JOB", &token)
            // A new engine slot starts as a copy of this kernel's, which no cell is
            // compiling in while the engines start (another kernel's may be mid-build).
            .envs(std::env::var_os("EVCXR_TMPDIR").map(|d| ("FOGKIT_SEED_FROM", d)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; the job dies with this kernel.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            fail(format!(
                "could not start {} (build it with `cargo build --release -p fogkit \
                 --features mpi --bin fogrun`, or set FOGKIT_FOGRUN): {e}",
                fogrun.display()
            ))
        })?;
        let log = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                    l.push(line);
                    let extra = l.len().saturating_sub(400);
                    l.drain(..extra);
                }
            });
        }
        let job = Arc::new(Job {
            child: Mutex::new(child),
            tag: format!("FOGKIT_ENGINE_JOB={token}"),
            ended: AtomicBool::new(false),
            log,
            interrupted: AtomicBool::new(false),
        });
        started(Arc::clone(&job));
        let connected = accept(&listener, n, &token, &job);
        let (ranks, readers) = match connected {
            Ok(c) => c,
            Err(e) => {
                job.kill();
                return Err(fail(e));
            }
        };
        let (tx, events) = mpsc::channel();
        for (rank, reader) in readers.into_iter().enumerate() {
            let tx = tx.clone();
            std::thread::spawn(move || read_events(rank, reader, tx));
        }
        let mut engines = Engines {
            ranks,
            job,
            events,
            stopped: None,
        };
        // Rank 0 compiles the dependencies; the others then find them in the cache.
        let all: Vec<usize> = (0..n).collect();
        let init_msg = json!({ "init": init });
        let mut said = Vec::new();
        let mut keep = |o: Out| said.push(o);
        let setup = engines
            .run(&init_msg, &all[..1], &mut keep)
            .and_then(|()| engines.run(&init_msg, &all[1..], &mut keep));
        if let Err(mut f) = setup {
            // What the engines printed (cargo's errors) only when the set-up failed.
            for o in said {
                emit(o);
            }
            f.evalue = format!("the engines' set-up failed: {}", f.evalue);
            return Err(f);
        }
        let mut text = format!(
            "{n} MPI engines started ({}):\n",
            shell_words(&fogrun, n, args)
        );
        for (r, rank) in engines.ranks.iter().enumerate() {
            text += &format!("  rank {r} on {} (pid {})\n", rank.host, rank.pid);
        }
        emit(Out::Stream {
            name: "stdout".into(),
            text,
        });
        Ok(engines)
    }

    pub fn size(&self) -> usize {
        self.ranks.len()
    }

    /// Why the engines stopped, if they have.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Runs `code` on `targets` (rank numbers), passing on their outputs in rank order.
    pub fn eval(
        &mut self,
        code: &str,
        targets: &[usize],
        emit: &mut dyn FnMut(Out),
    ) -> Result<(), Failure> {
        if let Some(r) = targets.iter().find(|&&r| r >= self.ranks.len()) {
            return Err(Failure::new(
                "engines",
                format!(
                    "expected ranks below {} (the engines' size), found rank {r}",
                    self.ranks.len()
                ),
            ));
        }
        self.run(&json!({ "cell": code }), targets, emit)
    }

    fn run(
        &mut self,
        msg: &Value,
        targets: &[usize],
        emit: &mut dyn FnMut(Out),
    ) -> Result<(), Failure> {
        if let Some(why) = &self.stopped {
            return Err(Failure::new(
                "engines stopped",
                format!(
                    "the engines have stopped ({why}): `:engines restart` starts them again \
                     (their variables are lost)"
                ),
            ));
        }
        for &r in targets {
            if link::send(&mut self.ranks[r].writer, msg).is_err() {
                // The reader sees the same closed connection and reports it below.
                continue;
            }
        }
        let mut order = Order::new(targets);
        let mut failures: BTreeMap<usize, Failure> = BTreeMap::new();
        while !order.finished() {
            match self.events.recv_timeout(Duration::from_millis(250)) {
                Ok((r, Incoming::Msg(v))) => match link::event(&v) {
                    Some(Event::Out(o)) => order.out(r, o, emit),
                    Some(Event::Done) => order.done(r, emit),
                    Some(Event::Failed(f)) => {
                        failures.insert(r, f);
                        order.done(r, emit);
                    }
                    None => {}
                },
                Ok((r, Incoming::Closed(why))) => {
                    let f = self.lost(r, &why);
                    order.flush_all(emit);
                    return Err(f);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = self.job.exited() {
                        let f = self.lost_job(&status);
                        order.flush_all(emit);
                        return Err(f);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let f = self.lost_job("no engine is connected");
                    order.flush_all(emit);
                    return Err(f);
                }
            }
        }
        match failures.iter().next() {
            None => Ok(()),
            Some((&r, f)) => {
                let others: Vec<String> = failures.keys().skip(1).map(|r| r.to_string()).collect();
                let mut evalue = format!("rank {r} ({}): {}", f.ename, f.evalue);
                if !others.is_empty() {
                    evalue += &format!(" (ranks {} failed too)", others.join(", "));
                }
                let mut traceback = vec![evalue.clone()];
                for (r, f) in &failures {
                    traceback.extend(f.traceback.iter().map(|l| format!("[rank {r}] {l}")));
                }
                Err(Failure {
                    ename: format!("rank {r}"),
                    evalue,
                    traceback,
                })
            }
        }
    }

    /// Rank `r`'s connection closed: the job is over. Names the rank, its host and pid,
    /// and what `mpirun` said, then ends every process of the job.
    fn lost(&mut self, r: usize, why: &str) -> Failure {
        // mpirun reports a rank's death a moment after its connection closes.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && self.job.exited().is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let interrupted = self.job.interrupted.load(Ordering::SeqCst);
        let said = self.job_said();
        self.job.kill();
        let rank = &self.ranks[r];
        let reason = if interrupted {
            "the engines were stopped by an interrupt".to_string()
        } else {
            format!(
                "rank {r} (pid {} on {}) was lost during the cell: {why}",
                rank.pid, rank.host
            )
        };
        self.stopped = Some(reason.clone());
        let evalue = format!(
            "{reason}; all engines have ended (their variables are lost): `:engines restart` \
             starts them again"
        );
        let mut traceback = vec![evalue.clone()];
        traceback.extend(said);
        Failure {
            ename: if interrupted {
                "interrupted".into()
            } else {
                format!("rank {r}")
            },
            evalue,
            traceback,
        }
    }

    fn lost_job(&mut self, status: &str) -> Failure {
        let said = self.job_said();
        let interrupted = self.job.interrupted.load(Ordering::SeqCst);
        self.job.kill();
        let reason = if interrupted {
            "the engines were stopped by an interrupt".to_string()
        } else {
            format!("the MPI job ended ({status})")
        };
        self.stopped = Some(reason.clone());
        let mut traceback = vec![reason.clone()];
        traceback.extend(said);
        Failure {
            ename: if interrupted {
                "interrupted"
            } else {
                "engines"
            }
            .into(),
            evalue: format!("{reason}: `:engines restart` starts the engines again"),
            traceback,
        }
    }

    /// The lines of `fogrun`'s and `mpirun`'s output that say what happened.
    fn job_said(&self) -> Vec<String> {
        self.job
            .log_tail(40)
            .into_iter()
            .filter(|l| !l.trim().is_empty() && !l.chars().all(|c| c == '-'))
            .map(|l| format!("mpirun: {l}"))
            .collect()
    }

    /// Ends the job and every process under it.
    pub fn stop(&mut self) {
        for r in &self.ranks {
            let _ = r.writer.shutdown(std::net::Shutdown::Both);
        }
        self.job.kill();
        self.stopped
            .get_or_insert_with(|| "stopped by `:engines stop`".into());
    }
}

impl Drop for Engines {
    fn drop(&mut self) {
        self.stop();
    }
}

fn shell_words(fogrun: &std::path::Path, n: usize, args: &[String]) -> String {
    let name = fogrun
        .file_name()
        .map_or("fogrun".into(), |f| f.to_string_lossy());
    let mut s = format!("{name} -np {n}");
    for a in args {
        s += " ";
        s += a;
    }
    s
}

/// Waits for `n` ranks to connect and say hello with the job's token.
fn accept(
    listener: &TcpListener,
    n: usize,
    token: &str,
    job: &Job,
) -> Result<(Vec<Rank>, Vec<BufReader<TcpStream>>), String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + CONNECT;
    let mut slots: Vec<Option<(Rank, BufReader<TcpStream>)>> = (0..n).map(|_| None).collect();
    while slots.iter().any(Option::is_none) {
        if let Some(status) = job.exited() {
            let said = job.log_tail(20).join("\n");
            return Err(format!(
                "the engines' job ended before all {n} ranks connected ({status}); \
                 fogrun said:\n{said}"
            ));
        }
        if Instant::now() > deadline {
            let missing: Vec<String> = (0..n)
                .filter(|&r| slots[r].is_none())
                .map(|r| r.to_string())
                .collect();
            return Err(format!(
                "ranks {} did not connect within {CONNECT:?} (ranks on other hosts need an \
                 address of this host they can reach: set FOGKIT_KERNEL_ADDR=IP:0); fogrun \
                 said:\n{}",
                missing.join(", "),
                job.log_tail(20).join("\n")
            ));
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(format!("accepting an engine failed: {e}")),
        };
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let hello = match link::recv(&mut reader) {
            Ok(Some(v)) => v["hello"].clone(),
            _ => continue,
        };
        if hello["token"].as_str() != Some(token) {
            // Not one of ours (another notebook's engine, or a stray connection).
            continue;
        }
        let rank = hello["rank"].as_u64().unwrap_or(u64::MAX) as usize;
        if rank >= n || slots[rank].is_some() {
            return Err(format!(
                "expected each of ranks 0..{n} to connect once, found {} (hello {hello})",
                if rank >= n {
                    "a rank outside the job"
                } else {
                    "a rank twice"
                }
            ));
        }
        let _ = reader.get_ref().set_read_timeout(None);
        slots[rank] = Some((
            Rank {
                writer,
                host: hello["host"].as_str().unwrap_or("?").to_string(),
                pid: hello["pid"].as_u64().unwrap_or(0),
            },
            reader,
        ));
    }
    Ok(slots.into_iter().flatten().unzip())
}

fn read_events(rank: usize, mut reader: BufReader<TcpStream>, tx: mpsc::Sender<(usize, Incoming)>) {
    loop {
        match link::recv(&mut reader) {
            Ok(Some(v)) => {
                if tx.send((rank, Incoming::Msg(v))).is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = tx.send((rank, Incoming::Closed("its connection closed".into())));
                return;
            }
            Err(e) => {
                let _ = tx.send((
                    rank,
                    Incoming::Closed(format!("its connection failed: {e}")),
                ));
                return;
            }
        }
    }
}

/// Passes outputs on in rank order: the lowest unfinished target's live, the others'
/// held until every lower target has finished.
struct Order {
    targets: Vec<usize>,
    current: usize,
    held: BTreeMap<usize, Vec<Out>>,
    done: Vec<bool>,
}

impl Order {
    fn new(targets: &[usize]) -> Order {
        Order {
            targets: targets.to_vec(),
            current: 0,
            held: BTreeMap::new(),
            done: vec![false; targets.len()],
        }
    }

    fn finished(&self) -> bool {
        self.current >= self.targets.len()
    }

    fn out(&mut self, rank: usize, o: Out, emit: &mut dyn FnMut(Out)) {
        if self.targets.get(self.current) == Some(&rank) {
            shown(rank, o, emit);
        } else {
            self.held.entry(rank).or_default().push(o);
        }
    }

    fn done(&mut self, rank: usize, emit: &mut dyn FnMut(Out)) {
        if let Some(i) = self.targets.iter().position(|&t| t == rank) {
            self.done[i] = true;
        }
        while self.current < self.targets.len() && self.done[self.current] {
            self.current += 1;
            if let Some(&next) = self.targets.get(self.current) {
                for o in self.held.remove(&next).unwrap_or_default() {
                    shown(next, o, emit);
                }
            }
        }
    }

    fn flush_all(&mut self, emit: &mut dyn FnMut(Out)) {
        for (rank, outs) in std::mem::take(&mut self.held) {
            for o in outs {
                shown(rank, o, emit);
            }
        }
        self.current = self.targets.len();
    }
}

/// Passes on one output of `rank`, marked; a figure or frame comes after a line naming
/// its rank (its picture has no text to mark).
fn shown(rank: usize, o: Out, emit: &mut dyn FnMut(Out)) {
    if matches!(o, Out::Display { .. }) {
        emit(Out::Stream {
            name: "stdout".into(),
            text: format!("[rank {rank}] shows:\n"),
        });
    }
    emit(mark(rank, o));
}

/// Marks an output with its rank: every text line starts with `[rank r] `.
pub fn mark(rank: usize, o: Out) -> Out {
    let prefix = |text: &str| -> String {
        text.split_inclusive('\n')
            .map(|l| format!("[rank {rank}] {l}"))
            .collect()
    };
    match o {
        Out::Stream { name, text } => Out::Stream {
            text: prefix(&text),
            name,
        },
        Out::Display { mut data } => {
            if let Some(Value::String(t)) = data.get("text/plain") {
                let t = prefix(t);
                data.insert("text/plain".into(), Value::String(t));
            }
            Out::Display { data }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(o: &Out) -> String {
        match o {
            Out::Stream { text, .. } => text.clone(),
            Out::Display { data } => data["text/plain"].as_str().unwrap_or("").to_string(),
        }
    }

    fn line(t: &str) -> Out {
        Out::Stream {
            name: "stdout".into(),
            text: t.into(),
        }
    }

    #[test]
    fn outputs_come_out_in_rank_order_whatever_order_they_arrive_in() {
        let mut seen = Vec::new();
        let mut emit = |o: Out| seen.push(text(&o));
        let mut order = Order::new(&[0, 1, 3]);
        order.out(3, line("c\n"), &mut emit);
        order.out(1, line("b\n"), &mut emit);
        order.out(0, line("a1\n"), &mut emit);
        order.done(3, &mut emit);
        order.out(0, line("a2\nA3\n"), &mut emit);
        assert!(!order.finished());
        order.done(0, &mut emit);
        order.out(1, line("b2\n"), &mut emit);
        order.done(1, &mut emit);
        assert!(order.finished());
        assert_eq!(
            seen,
            vec![
                "[rank 0] a1\n",
                "[rank 0] a2\n[rank 0] A3\n",
                "[rank 1] b\n",
                "[rank 1] b2\n",
                "[rank 3] c\n"
            ]
        );
    }

    #[test]
    fn a_display_is_marked_with_its_rank() {
        let mut data = serde_json::Map::new();
        data.insert("text/plain".into(), json!("shape: (2, 3)"));
        data.insert("text/html".into(), json!("<table/>"));
        let o = mark(2, Out::Display { data });
        assert_eq!(text(&o), "[rank 2] shape: (2, 3)");
        match o {
            Out::Display { data } => assert_eq!(data["text/html"], "<table/>"),
            _ => unreachable!(),
        }
    }
}
