//! The Jupyter side of the kernel: the five sockets of a connection file (shell, control,
//! iopub, stdin, heartbeat) over ZeroMQ, the requests a notebook front end sends, and
//! one evaluation thread that owns the [`Session`]. Control requests (interrupt,
//! shutdown) are served while a cell runs. It never evaluates code itself, and on
//! shutdown or when its parent (the Jupyter server) goes away it ends every process the
//! session started.

use std::path::Path;
use std::sync::{mpsc, Arc};

use serde_json::{json, Value};
use tokio::sync::{mpsc as tmpsc, oneshot};
use zeromq::{Socket, SocketRecv, SocketSend, ZmqMessage};

use crate::local::{Failure, Out};
use crate::session::{Interrupt, Session};
use crate::wire::{Key, Message};

/// A cell for the evaluation thread.
struct Cell {
    code: String,
    request: Message,
    done: oneshot::Sender<Result<(), Failure>>,
}

/// Serves the kernel described by `connection_file` until it is shut down.
pub fn serve(connection_file: &Path, toolkit: String) -> Result<(), String> {
    let text = std::fs::read_to_string(connection_file).map_err(|e| {
        format!(
            "could not read the connection file {}: {e}",
            connection_file.display()
        )
    })?;
    let conn: Value = serde_json::from_str(&text)
        .map_err(|e| format!("expected a Jupyter connection file (JSON), found: {e}"))?;
    let scheme = conn["signature_scheme"].as_str().unwrap_or("hmac-sha256");
    if scheme != "hmac-sha256" {
        return Err(format!(
            "expected signature_scheme hmac-sha256, found {scheme}"
        ));
    }
    let key = Key::new(conn["key"].as_str().unwrap_or(""))?;
    let endpoint = |port: &str| -> Result<String, String> {
        let p = conn[port].as_u64().ok_or_else(|| {
            format!(
                "expected a number for {port} in the connection file, found {}",
                conn[port]
            )
        })?;
        Ok(format!(
            "{}://{}:{p}",
            conn["transport"].as_str().unwrap_or("tcp"),
            conn["ip"].as_str().unwrap_or("127.0.0.1")
        ))
    };
    let ports = [
        endpoint("shell_port")?,
        endpoint("control_port")?,
        endpoint("iopub_port")?,
        endpoint("stdin_port")?,
        endpoint("hb_port")?,
    ];

    let mut session = Session::new(toolkit);
    let interrupt = session.interrupter();
    watch_parent(Arc::clone(&interrupt));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the kernel's runtime: {e}"))?;
    rt.block_on(async move {
        let mut shell = zeromq::RouterSocket::new();
        let mut control = zeromq::RouterSocket::new();
        let mut iopub = zeromq::PubSocket::new();
        let mut stdin = zeromq::RouterSocket::new();
        let mut hb = zeromq::RepSocket::new();
        let bind_err = |p: &str, e: zeromq::ZmqError| format!("could not bind {p}: {e}");
        shell
            .bind(&ports[0])
            .await
            .map_err(|e| bind_err(&ports[0], e))?;
        control
            .bind(&ports[1])
            .await
            .map_err(|e| bind_err(&ports[1], e))?;
        iopub
            .bind(&ports[2])
            .await
            .map_err(|e| bind_err(&ports[2], e))?;
        stdin
            .bind(&ports[3])
            .await
            .map_err(|e| bind_err(&ports[3], e))?;
        hb.bind(&ports[4])
            .await
            .map_err(|e| bind_err(&ports[4], e))?;

        // iopub: one task owns the socket; everyone else sends it messages.
        let (pub_tx, mut pub_rx) = tmpsc::unbounded_channel::<Message>();
        let pub_key = key.clone();
        tokio::spawn(async move {
            while let Some(m) = pub_rx.recv().await {
                if let Ok(frames) = ZmqMessage::try_from(m.frames(&pub_key)) {
                    let _ = iopub.send(frames).await;
                }
            }
        });
        tokio::spawn(async move {
            // One client's error must not end the heartbeat for all.
            loop {
                match hb.recv().await {
                    Ok(ping) => drop(hb.send(ping).await),
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
        });
        let _stdin = stdin;

        // The evaluation thread: the session and its cells, one at a time.
        let (cells_tx, cells_rx) = mpsc::channel::<Cell>();
        let eval_pub = pub_tx.clone();
        std::thread::Builder::new()
            .name("fogkit-cells".into())
            .spawn(move || evaluate(&mut session, cells_rx, eval_pub))
            .map_err(|e| format!("could not start the evaluation thread: {e}"))?;

        let shell_key = key.clone();
        let shell_pub = pub_tx.clone();
        let shell_interrupt = Arc::clone(&interrupt);
        tokio::spawn(async move {
            let mut count = 0u64;
            while let Ok(frames) = shell.recv().await {
                let Ok(req) = Message::parse(frames.into_vec(), &shell_key) else {
                    continue;
                };
                status(&shell_pub, &req, "busy");
                let reply = match req.msg_type() {
                    "execute_request" => {
                        count += 1;
                        execute(&req, count, &cells_tx, &shell_pub).await
                    }
                    "shutdown_request" => {
                        let reply = req.child(
                            "shutdown_reply",
                            json!({"status": "ok", "restart": req.content["restart"]}),
                        );
                        if let Ok(frames) = ZmqMessage::try_from(reply.frames(&shell_key)) {
                            let _ = shell.send(frames).await;
                        }
                        status(&shell_pub, &req, "idle");
                        shutdown(&req, &shell_interrupt);
                        None
                    }
                    other => common_reply(&req, other),
                };
                if let Some(reply) = reply {
                    if let Ok(frames) = ZmqMessage::try_from(reply.frames(&shell_key)) {
                        let _ = shell.send(frames).await;
                    }
                }
                status(&shell_pub, &req, "idle");
            }
        });

        // The control channel on this task: interrupt and shutdown, even mid-cell.
        while let Ok(frames) = control.recv().await {
            let Ok(req) = Message::parse(frames.into_vec(), &key) else {
                continue;
            };
            let (reply, stop) = match req.msg_type() {
                "interrupt_request" => {
                    // Ending a job takes seconds: the control channel stays free meanwhile.
                    let interrupt = Arc::clone(&interrupt);
                    std::thread::spawn(move || interrupt.interrupt());
                    (
                        Some(req.child("interrupt_reply", json!({"status": "ok"}))),
                        false,
                    )
                }
                "shutdown_request" => (
                    Some(req.child(
                        "shutdown_reply",
                        json!({"status": "ok", "restart": req.content["restart"]}),
                    )),
                    true,
                ),
                other => (common_reply(&req, other), false),
            };
            if let Some(reply) = reply {
                if let Ok(frames) = ZmqMessage::try_from(reply.frames(&key)) {
                    let _ = control.send(frames).await;
                }
            }
            if stop {
                shutdown(&req, &interrupt);
            }
        }
        Ok::<(), String>(())
    })
}

/// Ends the session's processes and this kernel.
fn shutdown(_req: &Message, interrupt: &Interrupt) {
    interrupt.end_all();
    // Let the reply leave before the process does.
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::process::exit(0);
}

/// Ends the session's processes when the Jupyter server that started this kernel dies.
fn watch_parent(interrupt: Arc<Interrupt>) {
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        // SAFETY: as above.
        if unsafe { libc::getppid() } != parent {
            interrupt.end_all();
            std::process::exit(0);
        }
    });
}

fn status(iopub: &tmpsc::UnboundedSender<Message>, req: &Message, state: &str) {
    let _ = iopub.send(req.child("status", json!({ "execution_state": state })));
}

async fn execute(
    req: &Message,
    count: u64,
    cells: &mpsc::Sender<Cell>,
    iopub: &tmpsc::UnboundedSender<Message>,
) -> Option<Message> {
    let code = req.content["code"].as_str().unwrap_or("").to_string();
    let _ = iopub.send(req.child(
        "execute_input",
        json!({"code": code, "execution_count": count}),
    ));
    let (done_tx, done_rx) = oneshot::channel();
    let sent = cells.send(Cell {
        code,
        request: req.clone(),
        done: done_tx,
    });
    let result = match sent {
        Ok(()) => done_rx
            .await
            .unwrap_or_else(|_| Err(Failure::new("internal", "the evaluation thread ended"))),
        Err(_) => Err(Failure::new("internal", "the evaluation thread ended")),
    };
    let content = match result {
        Ok(()) => json!({"status": "ok", "execution_count": count, "payload": [],
            "user_expressions": {}}),
        Err(f) => {
            let error = json!({"ename": f.ename, "evalue": f.evalue, "traceback": f.traceback});
            let _ = iopub.send(req.child("error", error.clone()));
            let mut c = error;
            c["status"] = json!("error");
            c["execution_count"] = json!(count);
            c
        }
    };
    Some(req.child("execute_reply", content))
}

/// Replies that do not depend on the session.
fn common_reply(req: &Message, msg_type: &str) -> Option<Message> {
    let (kind, content) = match msg_type {
        "kernel_info_request" => (
            "kernel_info_reply",
            json!({
                "status": "ok",
                "protocol_version": "5.3",
                "implementation": "fogkit-kernel",
                "implementation_version": env!("CARGO_PKG_VERSION"),
                "language_info": {
                    "name": "Rust",
                    "version": "",
                    "mimetype": "text/rust",
                    "file_extension": ".rs",
                    "pygments_lexer": "rust",
                    "codemirror_mode": "rust",
                },
                "banner": "fogkit: Rust cells with fogkit loaded, in this process or on MPI engines (`:engines 4`)",
                "help_links": [],
            }),
        ),
        "is_complete_request" => ("is_complete_reply", json!({"status": "complete"})),
        "complete_request" => {
            let pos = req.content["cursor_pos"].clone();
            (
                "complete_reply",
                json!({"status": "ok", "matches": [], "cursor_start": pos, "cursor_end": pos,
                    "metadata": {}}),
            )
        }
        "inspect_request" => (
            "inspect_reply",
            json!({"status": "ok", "found": false, "data": {}, "metadata": {}}),
        ),
        "comm_info_request" => ("comm_info_reply", json!({"status": "ok", "comms": {}})),
        "history_request" => ("history_reply", json!({"status": "ok", "history": []})),
        _ => return None,
    };
    Some(req.child(kind, content))
}

/// The evaluation thread: starts fogkit's context at once (the first cell then only
/// waits for what is left of it), then runs cells as they come.
fn evaluate(
    session: &mut Session,
    cells: mpsc::Receiver<Cell>,
    iopub: tmpsc::UnboundedSender<Message>,
) {
    let mut early = Vec::new();
    let warm = session.warm(&mut |o| early.push(o));
    let mut warm = Some((warm, early));
    for cell in cells {
        let emit_to = |o: Out| {
            let msg = match o {
                Out::Stream { name, text } => cell
                    .request
                    .child("stream", json!({"name": name, "text": text})),
                Out::Display { data } => cell
                    .request
                    .child("display_data", json!({"data": data, "metadata": {}})),
            };
            let _ = iopub.send(msg);
        };
        let mut emit = emit_to;
        // A failed start-up shows in the first cell, which then runs (and retries it).
        if let Some((Err(f), outs)) = warm.take() {
            for o in outs {
                emit(o);
            }
            emit(Out::Stream {
                name: "stderr".into(),
                text: format!("the kernel's start-up failed: {}\n", f.evalue),
            });
        }
        let result = session.execute(&cell.code, &mut emit);
        let _ = cell.done.send(result);
    }
    session.end();
}
