//! Blocking work (sled flushes, file reads) run off the async threads: below the bus,
//! the Kafka broker and the pipeline's stages, which all use it.

/// A blocking task that did not return its result: it panicked, or the runtime shut
/// down under it.
#[derive(Debug, thiserror::Error)]
#[error("storage task failed: {0}")]
pub struct TaskFailed(#[from] tokio::task::JoinError);

/// Runs blocking storage work (sled flushes) off the async threads. Its error type says
/// how a task that did not return counts among its own failures.
pub async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<TaskFailed> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(TaskFailed)?
}
