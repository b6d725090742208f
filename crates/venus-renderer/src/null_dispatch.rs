//! A dispatch layer without Vulkan: it answers `vkEnumerateInstanceVersion` and records the
//! name of every command it sees; every other command fails with
//! [`DispatchError::Unsupported`], which makes the context fatal, so a real client aborts
//! cleanly ("ring fatal") at its first real Vulkan call instead of hanging.
//!
//! Used until the Vulkan layer is wired in (the server binary's default), by tests, and as
//! the smallest example of a [`Dispatch`] implementation.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use venus_protocol::commands::EnumerateInstanceVersionReply;
use venus_protocol::types::VkResult;
use venus_protocol::{Command, CommandHeader, Reply};

use crate::dispatch::{
    command_name, Channel, ContextInfo, Dispatch, DispatchCx, DispatchError, DispatchFactory,
};

/// The version `vkEnumerateInstanceVersion` reports: 1.3.269 (the protocol's vk.xml).
pub const NULL_DISPATCH_API_VERSION: u32 = venus_protocol::types::VK_XML_VERSION;

/// One command seen by a [`NullDispatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchRecord {
    /// [`ContextInfo::id`] of the context.
    pub context_id: u64,
    /// The channel that decoded it.
    pub channel: Channel,
    /// The command's name (`vkCreateInstance`, ...).
    pub command: &'static str,
    /// Whether the client asked for a reply.
    pub wants_reply: bool,
}

#[derive(Debug, Default)]
struct Log {
    records: Mutex<Vec<DispatchRecord>>,
    changed: Condvar,
}

/// See the module doc. Cloning shares the log; as a [`DispatchFactory`] it hands every context
/// a clone, so one log shows every context's commands.
#[derive(Debug, Clone, Default)]
pub struct NullDispatch {
    log: Arc<Log>,
}

impl NullDispatch {
    /// A new, empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<DispatchRecord>> {
        self.log.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every command seen so far, in order.
    pub fn records(&self) -> Vec<DispatchRecord> {
        self.lock().clone()
    }

    /// The names of the commands seen so far, in order.
    pub fn command_names(&self) -> Vec<&'static str> {
        self.lock().iter().map(|r| r.command).collect()
    }

    /// Waits until `pred` holds on the records (or `timeout`); returns whether it held.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[DispatchRecord]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        loop {
            if pred(&g) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self
                .log
                .changed
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Dispatch for NullDispatch {
    fn dispatch(
        &self,
        cx: &mut DispatchCx<'_>,
        header: &CommandHeader,
        cmd: &Command<'_>,
    ) -> Result<(), DispatchError> {
        let command = command_name(header);
        self.lock().push(DispatchRecord {
            context_id: cx.context_id(),
            channel: cx.channel(),
            command,
            wants_reply: header.wants_reply(),
        });
        self.log.changed.notify_all();
        match cmd {
            Command::EnumerateInstanceVersion(_) => cx.reply(&Reply::EnumerateInstanceVersion(
                EnumerateInstanceVersionReply {
                    ret: VkResult::SUCCESS,
                    p_api_version: &NULL_DISPATCH_API_VERSION,
                },
            )),
            _ => Err(DispatchError::Unsupported(command)),
        }
    }
}

impl DispatchFactory for NullDispatch {
    fn create_dispatch(&self, _info: &ContextInfo) -> Result<Arc<dyn Dispatch>, DispatchError> {
        Ok(Arc::new(self.clone()))
    }
}
