//! The fake task command router (`modal.task_command_router.TaskCommandRouter`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use atp_modal::proto::router as rpb;
use atp_modal::proto::router::task_command_router_server::TaskCommandRouter;
use tokio::sync::Notify;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::{engine, lock, ExecEntry, ExecState, State};

pub(crate) struct Router(pub Arc<State>);

type R<T> = Result<Response<T>, Status>;

impl Router {
    /// The container of a live task, or the status a dead task answers with.
    fn container_of(&self, task_id: &str) -> Result<String, Status> {
        let t = lock(&self.0.t);
        let sb = t
            .tasks
            .get(task_id)
            .and_then(|s| t.sandboxes.get(s))
            .ok_or_else(|| Status::not_found(format!("task {task_id} not found")))?;
        if sb.result.is_some() {
            return Err(Status::failed_precondition(format!(
                "task {task_id} already completed"
            )));
        }
        sb.view
            .container
            .clone()
            .ok_or_else(|| Status::failed_precondition(format!("task {task_id} has no container")))
    }

    fn exec(&self, task_id: &str, exec_id: &str) -> Result<Arc<ExecEntry>, Status> {
        let e = lock(&self.0.execs)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("exec {exec_id} not found")))?;
        if lock(&e.state).task_id != task_id {
            return Err(Status::not_found(format!(
                "exec {exec_id} not found in task {task_id}"
            )));
        }
        Ok(e)
    }

    fn task_dead(&self, task_id: &str) -> bool {
        let t = lock(&self.0.t);
        t.tasks
            .get(task_id)
            .and_then(|s| t.sandboxes.get(s))
            .is_none_or(|s| s.result.is_some())
    }
}

#[tonic::async_trait]
impl TaskCommandRouter for Router {
    async fn task_exec_start(
        &self,
        req: Request<rpb::TaskExecStartRequest>,
    ) -> R<rpb::TaskExecStartResponse> {
        self.0.enter("TaskExecStart", req.metadata(), true)?;
        let r = req.into_inner();
        if r.command_args.is_empty() {
            return Err(Status::invalid_argument("command_args is empty"));
        }
        let container = self.container_of(&r.task_id)?;
        {
            let execs = lock(&self.0.execs);
            if execs.contains_key(&r.exec_id) {
                return Ok(Response::new(rpb::TaskExecStartResponse {})); // idempotent
            }
        }
        let entry = Arc::new(ExecEntry {
            state: Mutex::new(ExecState {
                task_id: r.task_id.clone(),
                ..Default::default()
            }),
            changed: Notify::new(),
        });
        // Output not piped is discarded, as with Modal's DEVNULL (the zero value).
        let mut argv = r.command_args.clone();
        let out_piped = r.stdout_config == rpb::TaskExecStdoutConfig::Pipe as i32;
        let err_cfg = r.stderr_config;
        if !out_piped || err_cfg != rpb::TaskExecStderrConfig::Pipe as i32 {
            let redirect = match (out_piped, err_cfg) {
                (true, 0) => "exec 2>/dev/null",
                (true, 2) => "exec 2>&1",
                (false, 1) => "exec >/dev/null",
                (false, 2) => "exec >/dev/null 2>&1",
                _ => "exec >/dev/null 2>/dev/null",
            };
            let mut wrapped = vec![
                "sh".to_string(),
                "-c".to_string(),
                format!("{redirect}; exec \"$@\""),
                "sh".to_string(),
            ];
            wrapped.append(&mut argv);
            argv = wrapped;
        }
        if !r.env.is_empty() {
            let mut wrapped = vec!["env".to_string()];
            wrapped.extend(r.env.iter().map(|(k, v)| format!("{k}={v}")));
            wrapped.append(&mut argv);
            argv = wrapped;
        }
        lock(&self.0.execs).insert(r.exec_id.clone(), entry.clone());
        engine::start_exec(&self.0, &container, argv, r.workdir, entry)
            .await
            .map_err(|e| Status::internal(format!("fake exec failed to start: {e}")))?;
        Ok(Response::new(rpb::TaskExecStartResponse {}))
    }

    async fn task_exec_stdin_write(
        &self,
        req: Request<rpb::TaskExecStdinWriteRequest>,
    ) -> R<rpb::TaskExecStdinWriteResponse> {
        self.0.enter("TaskExecStdinWrite", req.metadata(), true)?;
        let r = req.into_inner();
        if self.task_dead(&r.task_id) {
            return Err(Status::failed_precondition("task already completed"));
        }
        let e = self.exec(&r.task_id, &r.exec_id)?;
        let mut st = lock(&e.state);
        if st.stdin_closed {
            return Ok(Response::new(rpb::TaskExecStdinWriteResponse {}));
        }
        let end = r.offset + r.data.len() as u64;
        if r.offset > st.stdin_offset {
            return Err(Status::invalid_argument(format!(
                "stdin offset {} is past the {} bytes written",
                r.offset, st.stdin_offset
            )));
        }
        // Bytes before the current offset were already written (a resent chunk): skip them.
        let skip = (st.stdin_offset - r.offset) as usize;
        let tx = st.stdin_tx.clone();
        if end > st.stdin_offset {
            if let Some(tx) = &tx {
                let _ = tx.send(Some(bytes::Bytes::copy_from_slice(&r.data[skip..])));
            }
            st.stdin_offset = end;
        }
        if r.eof {
            st.stdin_closed = true;
            if let Some(tx) = &tx {
                let _ = tx.send(None);
            }
        }
        Ok(Response::new(rpb::TaskExecStdinWriteResponse {}))
    }

    async fn task_exec_stdio_read(
        &self,
        req: Request<rpb::TaskExecStdioReadRequest>,
    ) -> R<BoxStream<rpb::TaskExecStdioReadResponse>> {
        self.0.enter("TaskExecStdioRead", req.metadata(), true)?;
        let r = req.into_inner();
        let e = self.exec(&r.task_id, &r.exec_id)?;
        let state = self.0.clone();
        let chunk = state.opts.chunk_size.max(1);
        let stderr = r.file_descriptor == rpb::TaskExecStdioFileDescriptor::Stderr as i32;
        let task_id = r.task_id.clone();
        let break_after = state.opts.break_stdio_after;
        let stream = async_stream(move |tx| async move {
            let mut offset = r.offset as usize;
            let mut sent = 0usize;
            loop {
                let notified = e.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if state.stall.load(Ordering::SeqCst) {
                    futures::future::pending::<()>().await;
                }
                let (data, done) = {
                    let st = lock(&e.state);
                    let buf = if stderr { &st.stderr } else { &st.stdout };
                    let end = buf.len().min(offset + chunk);
                    (
                        buf.get(offset..end).map(<[u8]>::to_vec).unwrap_or_default(),
                        st.output_done,
                    )
                };
                if !data.is_empty() {
                    if break_after.is_some_and(|n| sent >= n) {
                        let _ = tx
                            .send(Err(Status::unavailable("stream reset by the fake")))
                            .await;
                        return;
                    }
                    sent += 1;
                    offset += data.len();
                    if tx
                        .send(Ok(rpb::TaskExecStdioReadResponse { data }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                if done {
                    return;
                }
                let dead = {
                    let t = lock(&state.t);
                    t.tasks
                        .get(&task_id)
                        .and_then(|s| t.sandboxes.get(s))
                        .is_none_or(|s| s.result.is_some())
                };
                if dead {
                    let _ = tx
                        .send(Err(Status::failed_precondition(
                            "task terminated while the exec ran",
                        )))
                        .await;
                    return;
                }
                notified.await;
            }
        });
        Ok(Response::new(stream))
    }

    async fn task_exec_wait(
        &self,
        req: Request<rpb::TaskExecWaitRequest>,
    ) -> R<rpb::TaskExecWaitResponse> {
        self.0.enter("TaskExecWait", req.metadata(), true)?;
        let r = req.into_inner();
        let e = self.exec(&r.task_id, &r.exec_id)?;
        loop {
            let notified = e.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.0.stall.load(Ordering::SeqCst) {
                futures::future::pending::<()>().await;
            }
            if self.task_dead(&r.task_id) {
                return Err(Status::failed_precondition(
                    "task terminated while the exec ran",
                ));
            }
            if let Some(code) = lock(&e.state).exit {
                use rpb::task_exec_wait_response::ExitStatus;
                let status = if (129..=128 + 64).contains(&code) {
                    ExitStatus::Signal((code - 128) as i32)
                } else {
                    ExitStatus::Code(code as i32)
                };
                return Ok(Response::new(rpb::TaskExecWaitResponse {
                    exit_status: Some(status),
                }));
            }
            notified.await;
        }
    }
}

/// A boxed stream fed by a producer task through a bounded channel.
fn async_stream<T, F, Fut>(producer: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(producer(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
