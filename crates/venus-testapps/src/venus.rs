//! A raw Venus client over [`crate::vtest::Client`]: commands encoded with `venus_protocol`,
//! sent on the context stream (`SUBMIT_CMD2`) or through a ring, replies read from a reply
//! blob (contract §4.7), and the setup every test needs (instance, physical device, device,
//! queue bound to a timeline). Object ids are chosen here (a counter).

use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use venus_protocol::commands::*;
use venus_protocol::structs::*;
use venus_protocol::types::*;
use venus_protocol::{encode_command, Command, Encoder, Id, Str, COMMAND_GENERATE_REPLY};

use crate::vtest::{Client, Mapping};

/// Size of the reply window (every reply used here is far smaller).
pub const REPLY_SIZE: usize = 64 << 10;
/// `VK_MAKE_API_VERSION(0, 1, 3, 0)`.
pub const API_VERSION_1_3: u32 = (1 << 22) | (3 << 12);

/// Encodes commands (with their flags) back to back.
pub fn encode(cmds: &[(Command<'_>, u32)]) -> Vec<u8> {
    let mut e = Encoder::new();
    for (c, flags) in cmds {
        encode_command(&mut e, c, *flags);
    }
    e.into_bytes()
}

/// The `VkResult` of a reply (the dword after the echoed command type).
pub fn reply_result(reply: &[u8]) -> i32 {
    i32::from_le_bytes(reply[4..8].try_into().expect("a reply of at least 8 bytes"))
}

/// A raw Venus connection with a reply blob.
pub struct Session {
    pub vtest: Client,
    reply: Mapping,
    reply_res: u32,
    next_id: u64,
}

/// The objects [`Session::setup`] created.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    pub instance: Id<venus_protocol::handles::Instance>,
    pub physical_device: Id<venus_protocol::handles::PhysicalDevice>,
    pub device: Id<venus_protocol::handles::Device>,
    pub queue: Id<venus_protocol::handles::Queue>,
    /// Whether `VK_EXT_multi_draw` is enabled.
    pub multi_draw: bool,
}

impl Session {
    /// Connects, does the vtest handshake as `name` and creates the reply blob.
    pub fn connect(socket: &Path, name: &str) -> io::Result<Self> {
        let mut vtest = Client::connect(socket)?;
        vtest.handshake(name)?;
        let (reply_res, fd) = vtest.create_blob(REPLY_SIZE as u64)?;
        let reply = Mapping::new(fd, REPLY_SIZE)?;
        Ok(Self {
            vtest,
            reply,
            reply_res,
            next_id: 0x1000,
        })
    }

    /// A fresh object id.
    pub fn id<T: venus_protocol::Handle>(&mut self) -> Id<T> {
        self.next_id += 1;
        Id::from_raw(self.next_id)
    }

    /// The reply stream command for our blob (position 0).
    pub fn set_reply(&self) -> Vec<u8> {
        let stream = CommandStreamDescriptionMESA {
            resource_id: self.reply_res,
            offset: 0,
            size: REPLY_SIZE as u64,
        };
        encode(&[(
            Command::SetReplyCommandStreamMESA(SetReplyCommandStreamMESAArgs { p_stream: &stream }),
            0,
        )])
    }

    /// Sends an asynchronous command (no reply) on the context stream.
    pub fn send(&mut self, cmd: Command<'_>) -> io::Result<()> {
        self.vtest.submit(&encode(&[(cmd, 0)]))
    }

    /// Sends a command with the reply bit on the context stream and returns the reply, or
    /// `None` when none was written (the context is lost).
    pub fn call(&mut self, cmd: Command<'_>) -> io::Result<Option<Vec<u8>>> {
        let ty = cmd.command_type().0;
        self.reply.write(0, &[0xff; 8]);
        let mut bytes = self.set_reply();
        bytes.extend(encode(&[(cmd, COMMAND_GENERATE_REPLY)]));
        self.vtest.submit(&bytes)?;
        self.vtest.ping()?;
        Ok(self.take_reply(ty))
    }

    /// The reply in the blob if it answers command type `ty`.
    pub fn take_reply(&self, ty: i32) -> Option<Vec<u8>> {
        let r = self.reply.read(0, 4096);
        (i32::from_le_bytes(r[..4].try_into().unwrap()) == ty).then_some(r)
    }

    /// Like [`Session::call`], but the `VkResult` must be `VK_SUCCESS`.
    pub fn call_ok(&mut self, what: &str, cmd: Command<'_>) -> io::Result<Vec<u8>> {
        let r = self
            .call(cmd)?
            .ok_or_else(|| io::Error::other(format!("{what}: no reply (context lost?)")))?;
        match reply_result(&r) {
            0 => Ok(r),
            e => Err(io::Error::other(format!("{what}: VkResult {e}"))),
        }
    }

    /// Instance (API 1.3), the first physical device, a device with one queue, timeline
    /// semaphores and synchronization2 (and `VK_EXT_multi_draw` when asked and available),
    /// and the queue bound to timeline 1 with `vkGetDeviceQueue2`.
    pub fn setup(&mut self, want_multi_draw: bool) -> io::Result<Device> {
        let instance = self.id();
        let app = ApplicationInfo {
            api_version: API_VERSION_1_3,
            ..Default::default()
        };
        let info = InstanceCreateInfo {
            p_application_info: Some(&app),
            ..Default::default()
        };
        self.call_ok(
            "vkCreateInstance",
            Command::CreateInstance(CreateInstanceArgs {
                p_create_info: &info,
                p_instance: &instance,
            }),
        )?;
        let physical_device = self.physical_device(instance)?;
        let mut multi_draw = want_multi_draw;
        let device = match self.create_device(physical_device, multi_draw) {
            Ok(d) => d,
            Err(e) if multi_draw => {
                eprintln!("vkCreateDevice with VK_EXT_multi_draw failed ({e}); without it");
                multi_draw = false;
                self.create_device(physical_device, false)?
            }
            Err(e) => return Err(e),
        };
        let queue = self.id();
        let timeline = Ext::DeviceQueueTimelineInfoMESA(DeviceQueueTimelineInfoMESA {
            p_next: None,
            ring_idx: 1,
        });
        let queue_info = DeviceQueueInfo2 {
            p_next: Some(&timeline),
            ..Default::default()
        };
        self.send(Command::GetDeviceQueue2(GetDeviceQueue2Args {
            device,
            p_queue_info: &queue_info,
            p_queue: &queue,
        }))?;
        Ok(Device {
            instance,
            physical_device,
            device,
            queue,
            multi_draw,
        })
    }

    fn physical_device(
        &mut self,
        instance: Id<venus_protocol::handles::Instance>,
    ) -> io::Result<Id<venus_protocol::handles::PhysicalDevice>> {
        self.call_ok(
            "vkEnumeratePhysicalDevices (count)",
            Command::EnumeratePhysicalDevices(EnumeratePhysicalDevicesArgs {
                instance,
                p_physical_device_count: &0,
                p_physical_devices: &[],
            }),
        )?;
        let pd = self.id();
        let r = self.call(Command::EnumeratePhysicalDevices(
            EnumeratePhysicalDevicesArgs {
                instance,
                p_physical_device_count: &1,
                p_physical_devices: &[pd],
            },
        ))?;
        match r.map(|r| reply_result(&r)) {
            // VK_INCOMPLETE (5) is fine: we bind the first device only.
            Some(0 | 5) => Ok(pd),
            other => Err(io::Error::other(format!(
                "vkEnumeratePhysicalDevices: {other:?}"
            ))),
        }
    }

    fn create_device(
        &mut self,
        physical_device: Id<venus_protocol::handles::PhysicalDevice>,
        multi_draw: bool,
    ) -> io::Result<Id<venus_protocol::handles::Device>> {
        let device = self.id();
        let ext_name = Str::from_bytes_with_nul(b"VK_EXT_multi_draw\0").unwrap();
        let exts = [Some(ext_name)];
        let md = Ext::PhysicalDeviceMultiDrawFeaturesEXT(PhysicalDeviceMultiDrawFeaturesEXT {
            p_next: None,
            multi_draw: 1,
        });
        let sync2 =
            Ext::PhysicalDeviceSynchronization2Features(PhysicalDeviceSynchronization2Features {
                p_next: multi_draw.then_some(&md),
                synchronization2: 1,
            });
        let timeline =
            Ext::PhysicalDeviceTimelineSemaphoreFeatures(PhysicalDeviceTimelineSemaphoreFeatures {
                p_next: Some(&sync2),
                timeline_semaphore: 1,
            });
        let queue = [DeviceQueueCreateInfo {
            queue_count: 1,
            p_queue_priorities: &[1.0],
            ..Default::default()
        }];
        let exts: &[Option<Str<'_>>] = if multi_draw { &exts } else { &[] };
        let info = DeviceCreateInfo {
            p_next: Some(&timeline),
            queue_create_info_count: 1,
            p_queue_create_infos: &queue,
            enabled_extension_count: exts.len() as u32,
            pp_enabled_extension_names: exts,
            ..Default::default()
        };
        self.call_ok(
            "vkCreateDevice",
            Command::CreateDevice(CreateDeviceArgs {
                physical_device,
                p_create_info: &info,
                p_device: &device,
            }),
        )?;
        Ok(device)
    }

    /// An unsignalled fence (created asynchronously, like Mesa).
    pub fn create_fence(
        &mut self,
        device: Id<venus_protocol::handles::Device>,
    ) -> io::Result<Id<venus_protocol::handles::Fence>> {
        let fence = self.id();
        self.send(Command::CreateFence(CreateFenceArgs {
            device,
            p_create_info: &FenceCreateInfo::default(),
            p_fence: &fence,
        }))?;
        Ok(fence)
    }

    /// A timeline semaphore at value 0.
    pub fn create_timeline_semaphore(
        &mut self,
        device: Id<venus_protocol::handles::Device>,
    ) -> io::Result<Id<venus_protocol::handles::Semaphore>> {
        let semaphore = self.id();
        let ty = Ext::SemaphoreTypeCreateInfo(SemaphoreTypeCreateInfo {
            p_next: None,
            semaphore_type: SemaphoreType::TIMELINE,
            initial_value: 0,
        });
        let info = SemaphoreCreateInfo {
            p_next: Some(&ty),
            ..Default::default()
        };
        self.send(Command::CreateSemaphore(CreateSemaphoreArgs {
            device,
            p_create_info: &info,
            p_semaphore: &semaphore,
        }))?;
        Ok(semaphore)
    }

    /// `vkGetFenceStatus` with a reply: `Some(VkResult)` while the context answers.
    pub fn fence_status(
        &mut self,
        device: Id<venus_protocol::handles::Device>,
        fence: Id<venus_protocol::handles::Fence>,
    ) -> io::Result<Option<i32>> {
        let r = self.call(Command::GetFenceStatus(GetFenceStatusArgs {
            device,
            fence,
        }))?;
        Ok(r.map(|r| reply_result(&r)))
    }

    /// Creates a ring (Mesa's layout, contract §4.1) over a fresh blob.
    pub fn create_ring(&mut self, id: u64) -> io::Result<Ring> {
        let (res_id, fd) = self.vtest.create_blob(Ring::SIZE as u64)?;
        let map = Mapping::new(fd, Ring::SIZE)?;
        let monitor = Ext::RingMonitorInfoMESA(RingMonitorInfoMESA {
            p_next: None,
            max_reporting_period_microseconds: 3_000_000,
        });
        let info = RingCreateInfoMESA {
            p_next: Some(&monitor),
            resource_id: res_id,
            offset: 0,
            size: Ring::SIZE as u64,
            idle_timeout: 1_000_000,
            head_offset: Ring::HEAD as u64,
            tail_offset: Ring::TAIL as u64,
            status_offset: Ring::STATUS as u64,
            buffer_offset: Ring::BUFFER as u64,
            buffer_size: Ring::BUFFER_SIZE as u64,
            extra_offset: Ring::EXTRA as u64,
            extra_size: 4,
            ..Default::default()
        };
        self.send(Command::CreateRingMESA(CreateRingMESAArgs {
            ring: id,
            p_create_info: &info,
        }))?;
        self.vtest.ping()?;
        Ok(Ring { id, map, tail: 0 })
    }
}

/// A ring this client created (contract §4.2 layout, 16 KiB buffer).
pub struct Ring {
    pub id: u64,
    pub map: Mapping,
    tail: u32,
}

impl Ring {
    pub const HEAD: usize = 0;
    pub const TAIL: usize = 64;
    pub const STATUS: usize = 128;
    pub const BUFFER: usize = 192;
    pub const BUFFER_SIZE: usize = 16384;
    pub const EXTRA: usize = Self::BUFFER + Self::BUFFER_SIZE;
    pub const SIZE: usize = Self::EXTRA + 4;
    pub const STATUS_IDLE: u32 = 1;
    pub const STATUS_FATAL: u32 = 2;

    /// Publishes `bytes` (smaller than the buffer, written before anything wraps: this
    /// client only ever publishes a few commands) and notifies the ring if it is idle.
    pub fn publish(&mut self, session: &mut Session, bytes: &[u8]) -> io::Result<()> {
        let start = self.tail as usize % Self::BUFFER_SIZE;
        if start + bytes.len() > Self::BUFFER_SIZE {
            return Err(io::Error::other("ring publish would wrap"));
        }
        self.map.write(Self::BUFFER + start, bytes);
        self.tail = self.tail.wrapping_add(bytes.len() as u32);
        self.map
            .word(Self::TAIL)
            .store(self.tail, Ordering::Release);
        if self.map.word(Self::STATUS).load(Ordering::SeqCst) & Self::STATUS_IDLE != 0 {
            session.send(Command::NotifyRingMESA(NotifyRingMESAArgs {
                ring: self.id,
                seqno: self.tail,
                flags: RingNotifyFlagsMESA(0),
            }))?;
        }
        Ok(())
    }

    /// Whether the server consumed everything published so far within `timeout`.
    pub fn wait_consumed(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.map.word(Self::HEAD).load(Ordering::Acquire) != self.tail {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}
