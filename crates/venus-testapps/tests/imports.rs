//! `vkImportSemaphoreResourceMESA` (resource 0, "signalled now": Mesa's WSI acquire) on a host
//! without importable sync files (lavapipe). The import calls no driver; the queue operation
//! that next waits on the semaphore leaves that wait out, or, where it cannot (a `pNext` link
//! with an array parallel to the waits), submits the signal just before itself
//! (`crates/venus-dispatch/src/binary.rs`). A raw client on a ring imports and waits, frame
//! after frame, in each form:
//!
//! - `vkQueueSubmit` and `vkQueueSubmit2` waits: left out;
//! - a `vkQueueSubmit` batch with a `VkTimelineSemaphoreSubmitInfo` carrying wait values:
//!   the signal is submitted first;
//! - one `vkQueueSubmit` whose first batch waits on the import, whose second signals the
//!   semaphore again and whose third waits on that signal: only the first wait is left out.
//!
//! A wait kept without a signal would block the ring thread in the driver forever (the ring
//! stops consuming and the fence never signals); a signal submitted as well as a wait left out
//! would leave the driver's semaphore signalled, and the next frame's signal would be invalid.
//! The server runs under the validation layer, which must report nothing; the server's debug
//! lines say which way each import went.

use std::time::{Duration, Instant};

use venus_protocol::commands::*;
use venus_protocol::handles::{Fence, Queue, Semaphore};
use venus_protocol::structs::*;
use venus_protocol::types::*;
use venus_protocol::{Command, Id};
use venus_testapps::server::{Server, ServerOptions};
use venus_testapps::tools::{require, Tool};
use venus_testapps::validation;
use venus_testapps::venus::{encode, Device, Ring, Session};

const TIMEOUT: Duration = Duration::from_secs(10);
const FRAMES: usize = 3;

struct Client {
    s: Session,
    dev: Device,
    ring: Ring,
    fence: Id<Fence>,
}

impl Client {
    fn publish(&mut self, cmds: &[Command<'_>]) {
        let list: Vec<(Command<'_>, u32)> = cmds.iter().map(|c| (*c, 0)).collect();
        self.ring
            .publish(&mut self.s, &encode(&list))
            .expect("publish");
    }

    fn import(&self, semaphore: Id<Semaphore>) -> ImportSemaphoreResourceInfoMESA<'static> {
        ImportSemaphoreResourceInfoMESA {
            semaphore,
            resource_id: 0,
            ..Default::default()
        }
    }

    /// Publishes `submit` after an import of `semaphore`, then checks that the ring consumed it
    /// and that the operation's fence signals; resets the fence.
    fn frame(&mut self, semaphore: Id<Semaphore>, submit: Command<'_>) -> Result<(), String> {
        let info = self.import(semaphore);
        let device = self.dev.device;
        self.publish(&[
            Command::ImportSemaphoreResourceMESA(ImportSemaphoreResourceMESAArgs {
                device,
                p_import_semaphore_resource_info: &info,
            }),
            submit,
        ]);
        if !self.ring.wait_consumed(TIMEOUT) {
            return Err(format!(
                "the ring did not get past the submission within {TIMEOUT:?} (stuck in the \
                 driver on a wait nothing signals?)"
            ));
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self
                .s
                .fence_status(device, self.fence)
                .expect("vkGetFenceStatus")
            {
                Some(0) => break,
                Some(1) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                other => {
                    return Err(format!(
                        "the fence did not signal: vkGetFenceStatus {other:?}"
                    ))
                }
            }
        }
        let fences = [self.fence];
        self.s
            .send(Command::ResetFences(ResetFencesArgs {
                device,
                fence_count: 1,
                p_fences: &fences,
            }))
            .expect("vkResetFences");
        Ok(())
    }
}

/// A `VkSubmitInfo` batch that waits on `waits` at `stage` (one mask per wait).
fn waiting<'a>(waits: &'a [Id<Semaphore>], stage: &'a [PipelineStageFlags]) -> SubmitInfo<'a> {
    SubmitInfo {
        wait_semaphore_count: waits.len() as u32,
        p_wait_semaphores: waits,
        p_wait_dst_stage_mask: stage,
        ..Default::default()
    }
}

/// `vkQueueSubmit` of `submits` with `fence`.
fn submit<'a>(queue: Id<Queue>, submits: &'a [SubmitInfo<'a>], fence: Id<Fence>) -> Command<'a> {
    Command::QueueSubmit(QueueSubmitArgs {
        queue,
        submit_count: submits.len() as u32,
        p_submits: submits,
        fence,
    })
}

fn binary_semaphore(s: &mut Session, device: Id<venus_protocol::handles::Device>) -> Id<Semaphore> {
    let semaphore = s.id();
    s.send(Command::CreateSemaphore(CreateSemaphoreArgs {
        device,
        p_create_info: &SemaphoreCreateInfo::default(),
        p_semaphore: &semaphore,
    }))
    .expect("vkCreateSemaphore");
    semaphore
}

#[test]
fn imported_semaphores_are_waited_without_a_driver_import() {
    let test = "imported_semaphores_are_waited_without_a_driver_import";
    let Some(tools) = require(test, &[Tool::LavapipeIcd, Tool::ValidationLayer]) else {
        return;
    };
    let options = ServerOptions {
        validation: true,
        env: vec![(
            "VENUS_LOG".into(),
            "info,venus_dispatch::binary=debug".into(),
        )],
        ..ServerOptions::default()
    };
    let server = Server::start(&tools, &options);
    let mut s = Session::connect(server.socket(), "imports").expect("connect");
    let dev = s.setup(false).expect("setup");
    let fence = s.create_fence(dev.device).expect("fence");
    let a = binary_semaphore(&mut s, dev.device);
    let b = binary_semaphore(&mut s, dev.device);
    // A call on the context stream: the objects exist before the ring uses them.
    let status = s.fence_status(dev.device, fence).expect("vkGetFenceStatus");
    assert_eq!(status, Some(1), "{test}: a new fence is VK_NOT_READY");
    let ring = s.create_ring(1).expect("ring");
    let mut c = Client {
        s,
        dev,
        ring,
        fence,
    };
    let queue = c.dev.queue;
    let stage = [PipelineStageFlags::ALL_COMMANDS_BIT];
    let check = |what: &str, r: Result<(), String>| {
        if let Err(e) = r {
            panic!("{test}: {what}: {e}; log:\n{}", server.log_text());
        }
    };

    for frame in 0..FRAMES {
        // vkQueueSubmit: the wait is left out.
        let waits = [a];
        let submits = [waiting(&waits, &stage)];
        let op = submit(queue, &submits, fence);
        check(&format!("frame {frame}: vkQueueSubmit"), c.frame(a, op));

        // vkQueueSubmit2: the wait is left out.
        let infos = [SemaphoreSubmitInfo {
            semaphore: a,
            stage_mask: PipelineStageFlags2::STAGE_2_ALL_COMMANDS_BIT,
            ..Default::default()
        }];
        let submits2 = [SubmitInfo2 {
            wait_semaphore_info_count: 1,
            p_wait_semaphore_infos: &infos,
            ..Default::default()
        }];
        let op = Command::QueueSubmit2(QueueSubmit2Args {
            queue,
            submit_count: 1,
            p_submits: &submits2,
            fence,
        });
        check(&format!("frame {frame}: vkQueueSubmit2"), c.frame(a, op));

        // Wait values parallel to the waits: the import is submitted, the wait kept.
        let values = [0u64];
        let timeline = Ext::TimelineSemaphoreSubmitInfo(TimelineSemaphoreSubmitInfo {
            p_next: None,
            wait_semaphore_value_count: 1,
            p_wait_semaphore_values: &values,
            ..Default::default()
        });
        let submits = [SubmitInfo {
            p_next: Some(&timeline),
            ..waiting(&waits, &stage)
        }];
        let op = submit(queue, &submits, fence);
        check(&format!("frame {frame}: wait values"), c.frame(a, op));

        // Wait on the import, signal again, wait on that signal: one wait left out.
        let waits_b = [b];
        let submits = [
            waiting(&waits_b, &stage),
            SubmitInfo {
                signal_semaphore_count: 1,
                p_signal_semaphores: &waits_b,
                ..Default::default()
            },
            waiting(&waits_b, &stage),
        ];
        let op = submit(queue, &submits, fence);
        check(&format!("frame {frame}: signal again"), c.frame(b, op));
    }
    drop(c);

    let (log, report) = server.stop_with_stdout();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    let left_out = count("left out");
    let submitted = count("import submitted, batch 0 keeps wait 0");
    assert_eq!(
        (left_out, submitted),
        (3 * FRAMES, FRAMES),
        "{test}: want {} imports left out and {FRAMES} submitted; log:\n{log}",
        3 * FRAMES
    );
    assert!(
        !log.contains("context lost") && !log.contains("ERROR"),
        "{test}: the context must end normally; log:\n{log}"
    );
    validation::assert_clean(test, &report);
}
