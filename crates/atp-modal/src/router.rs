//! The task command router: exec with streamed stdio, authenticated by a JWT from the control
//! plane and refreshed when the router answers UNAUTHENTICATED.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Mutex;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use crate::client::{is_local_url, is_retryable, jwt_exp, open_channel, ModalClient, MAX_MESSAGE};
use crate::error::ModalError;
use crate::proto::router as rpb;
use crate::proto::router::task_command_router_client::TaskCommandRouterClient;

/// Which output stream of an exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    Stdout,
    Stderr,
}

impl Stdio {
    fn proto(self) -> i32 {
        match self {
            Stdio::Stdout => rpb::TaskExecStdioFileDescriptor::Stdout as i32,
            Stdio::Stderr => rpb::TaskExecStdioFileDescriptor::Stderr as i32,
        }
    }
}

struct Access {
    url: String,
    jwt: String,
    exp: u64,
    channel: Channel,
}

/// A router client for one task. Cheap to share behind an `Arc`.
pub struct RouterClient {
    cp: ModalClient,
    task_id: String,
    access: Mutex<Access>,
}

impl std::fmt::Debug for RouterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterClient")
            .field("task_id", &self.task_id)
            .finish_non_exhaustive()
    }
}

/// Router retry: 10 ms doubling, 10 retries.
const ROUTER_RETRIES: u32 = 10;
const ROUTER_BASE: Duration = Duration::from_millis(10);
/// Largest stdin chunk sent in one `TaskExecStdinWrite`.
pub const STDIN_CHUNK: usize = 1024 * 1024;

impl RouterClient {
    /// Ask the control plane for the task's router and open a channel to it.
    pub async fn connect(cp: &ModalClient, task_id: &str) -> Result<Self, ModalError> {
        let access = Self::fetch(cp, task_id).await?;
        Ok(RouterClient {
            cp: cp.clone(),
            task_id: task_id.to_string(),
            access: Mutex::new(access),
        })
    }

    async fn fetch(cp: &ModalClient, task_id: &str) -> Result<Access, ModalError> {
        let (url, jwt) = cp.router_access(task_id).await?;
        let exp = jwt_exp(&jwt).ok_or_else(|| ModalError::Protocol {
            method: "TaskGetCommandRouterAccess",
            detail: "router token is not a JWT with an exp claim".into(),
        })?;
        let plaintext = cp.is_loopback() || is_local_url(&url) && url.starts_with("http://");
        let channel = open_channel(&url, plaintext)?;
        Ok(Access {
            url,
            jwt,
            exp,
            channel,
        })
    }

    /// The task this router serves.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    async fn refresh(&self, used_jwt: &str) -> Result<(), ModalError> {
        let mut a = self.access.lock().await;
        if a.jwt != used_jwt {
            return Ok(()); // another caller refreshed meanwhile
        }
        let (url, jwt) = self.cp.router_access(&self.task_id).await?;
        if url != a.url {
            return Err(ModalError::Protocol {
                method: "TaskGetCommandRouterAccess",
                detail: format!("router URL changed from {} to {url}", a.url),
            });
        }
        a.exp = jwt_exp(&jwt).unwrap_or(0);
        a.jwt = jwt;
        Ok(())
    }

    async fn client_and_jwt(&self) -> (TaskCommandRouterClient<Channel>, String) {
        let a = self.access.lock().await;
        let c = TaskCommandRouterClient::new(a.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        (c, a.jwt.clone())
    }

    fn request<T>(msg: T, jwt: &str, timeout: Option<Duration>) -> Result<Request<T>, ModalError> {
        let mut r = Request::new(msg);
        let v =
            MetadataValue::try_from(format!("Bearer {jwt}")).map_err(|_| ModalError::Protocol {
                method: "router",
                detail: "router token is not valid ASCII".into(),
            })?;
        r.metadata_mut().insert("authorization", v);
        if let Some(t) = timeout {
            r.set_timeout(t);
        }
        Ok(r)
    }

    /// A unary router call with transient retries and one JWT refresh on UNAUTHENTICATED.
    async fn unary<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
        req: Req,
        call: F,
    ) -> Result<Resp, ModalError>
    where
        Req: Clone,
        F: Fn(TaskCommandRouterClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let mut delay = ROUTER_BASE;
        let mut retries = 0;
        let mut refreshed = false;
        loop {
            let (c, jwt) = self.client_and_jwt().await;
            match call(c, Self::request(req.clone(), &jwt, None)?).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) if s.code() == Code::Unauthenticated && !refreshed => {
                    refreshed = true;
                    self.refresh(&jwt).await?;
                }
                Err(s) if is_retryable(s.code()) && retries < ROUTER_RETRIES => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    retries += 1;
                }
                Err(s) => return Err(ModalError::rpc(method, &s)),
            }
        }
    }

    /// Start `argv` as exec `exec_id` with stdout and stderr piped.
    pub async fn exec_start(
        &self,
        exec_id: &str,
        argv: &[String],
        timeout_secs: Option<u32>,
        workdir: Option<&str>,
    ) -> Result<(), ModalError> {
        let total: usize = argv.iter().map(|a| a.len()).sum();
        if total > 65536 {
            return Err(ModalError::Config {
                detail: format!(
                    "command is {total} bytes; Modal accepts at most 65536 bytes of arguments"
                ),
            });
        }
        let req = rpb::TaskExecStartRequest {
            task_id: self.task_id.clone(),
            exec_id: exec_id.to_string(),
            command_args: argv.to_vec(),
            stdout_config: rpb::TaskExecStdoutConfig::Pipe as i32,
            stderr_config: rpb::TaskExecStderrConfig::Pipe as i32,
            timeout_secs,
            workdir: workdir.map(str::to_string),
            ..Default::default()
        };
        self.unary("TaskExecStart", req, |mut c, r| async move {
            c.task_exec_start(r).await
        })
        .await
        .map(|_| ())
    }

    /// Write `data` at byte `offset` of the exec's stdin (then EOF when `eof`).
    pub async fn stdin_write(
        &self,
        exec_id: &str,
        offset: u64,
        data: Vec<u8>,
        eof: bool,
    ) -> Result<(), ModalError> {
        let req = rpb::TaskExecStdinWriteRequest {
            task_id: self.task_id.clone(),
            exec_id: exec_id.to_string(),
            offset,
            data,
            eof,
        };
        self.unary("TaskExecStdinWrite", req, |mut c, r| async move {
            c.task_exec_stdin_write(r).await
        })
        .await
        .map(|_| ())
    }

    /// Stream one output of an exec into `sink` until it ends; reconnects at the current byte
    /// offset after transient errors.
    pub async fn stdio_read(
        &self,
        exec_id: &str,
        which: Stdio,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<u64, ModalError> {
        let mut offset: u64 = 0;
        let mut delay = ROUTER_BASE;
        let mut retries = 0;
        let mut refreshed = false;
        loop {
            let (mut c, jwt) = self.client_and_jwt().await;
            let req = Self::request(
                rpb::TaskExecStdioReadRequest {
                    task_id: self.task_id.clone(),
                    exec_id: exec_id.to_string(),
                    offset,
                    file_descriptor: which.proto(),
                },
                &jwt,
                None,
            )?;
            let status = match c.task_exec_stdio_read(req).await {
                Ok(resp) => {
                    let mut stream = resp.into_inner();
                    loop {
                        match stream.message().await {
                            Ok(Some(m)) => {
                                if !m.data.is_empty() {
                                    offset += m.data.len() as u64;
                                    sink(&m.data);
                                }
                                delay = ROUTER_BASE;
                                retries = 0;
                            }
                            Ok(None) => return Ok(offset),
                            Err(s) => break s,
                        }
                    }
                }
                Err(s) => s,
            };
            if status.code() == Code::Unauthenticated && !refreshed {
                refreshed = true;
                self.refresh(&jwt).await?;
                continue;
            }
            if is_retryable(status.code()) && retries < ROUTER_RETRIES {
                tracing::debug!(exec_id, offset, code = ?status.code(), "stdio stream broke; resuming");
                tokio::time::sleep(delay).await;
                delay *= 2;
                retries += 1;
                continue;
            }
            return Err(ModalError::rpc("TaskExecStdioRead", &status));
        }
    }

    /// Wait for an exec's exit status: the code, or 128 + signal. Each poll has a 60 s
    /// deadline and is re-issued on transient errors; the caller bounds the total.
    pub async fn exec_wait(&self, exec_id: &str) -> Result<i64, ModalError> {
        let mut refreshed = false;
        loop {
            let (mut c, jwt) = self.client_and_jwt().await;
            let req = Self::request(
                rpb::TaskExecWaitRequest {
                    task_id: self.task_id.clone(),
                    exec_id: exec_id.to_string(),
                },
                &jwt,
                Some(Duration::from_secs(60)),
            )?;
            match c.task_exec_wait(req).await {
                Ok(r) => {
                    use rpb::task_exec_wait_response::ExitStatus;
                    return match r.into_inner().exit_status {
                        Some(ExitStatus::Code(c)) => Ok(i64::from(c)),
                        Some(ExitStatus::Signal(s)) => Ok(128 + i64::from(s)),
                        None => Err(ModalError::Protocol {
                            method: "TaskExecWait",
                            detail: "no exit status in the answer".into(),
                        }),
                    };
                }
                Err(s) if s.code() == Code::Unauthenticated && !refreshed => {
                    refreshed = true;
                    self.refresh(&jwt).await?;
                }
                Err(s) if is_retryable(s.code()) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(s) => return Err(ModalError::rpc("TaskExecWait", &s)),
            }
        }
    }
}
