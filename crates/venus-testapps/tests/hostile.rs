//! Hostile clients hurt only themselves. A raw Venus client (`venus_testapps::venus`) sends
//! exact bytes through a ring; for every class of bad input the server must end **only that
//! context**: its ring gets `VK_RING_STATUS_FATAL_BIT_MESA`, the log has exactly one WARN line
//! for the context (`context lost: ...` naming the command, the parameter and the rule), the
//! server stays alive, a well-behaved raw client set up before keeps answering, and a
//! `vulkaninfo --summary` started before the bad input succeeds.
//!
//! Classes: wrong-type / unknown / destroyed object ids; an array count larger than the bytes
//! left; pNext chains with unknown sTypes or longer than the decoder's 256 links (the 256-link
//! chain itself, once a stack overflow, is in `tests/holes.rs`); the four inputs virglrs found
//! killing its VM through the host driver (degenerate `vkCmdClearAttachments` rects,
//! `vkCreateBuffer` with size 0, a framebuffer whose view format does not match its render
//! pass, an attachment-less pass's pipeline with `rasterizationSamples` 0); a disconnect in the
//! middle of a vtest message or of a ring command; and SIGKILL of a real Mesa client while it
//! submits (what it leaves behind is checked in `tests/lifetimes.rs`; here: a concurrent client);
//! commands of extensions the server does not advertise (a Vulkan one and a MESA one).

use std::time::{Duration, Instant};

use venus_protocol::commands::*;
use venus_protocol::structs::*;
use venus_protocol::types::*;
use venus_protocol::{Command, Id};
use venus_testapps::server::{context_of, wait_output, Program, Server, ServerOptions};
use venus_testapps::tools::{require, Tool};
use venus_testapps::venus::{encode, Device, Ring, Session};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A well-behaved raw client: it must keep answering while others misbehave.
struct Good {
    s: Session,
    dev: Device,
    fence: Id<venus_protocol::handles::Fence>,
}

impl Good {
    fn new(server: &Server) -> Self {
        let mut s = Session::connect(server.socket(), "hostile-good").expect("connect");
        let dev = s.setup(false).expect("setup");
        let fence = s.create_fence(dev.device).expect("fence");
        Good { s, dev, fence }
    }

    /// `vkGetFenceStatus` answers `VK_NOT_READY` (never submitted).
    fn assert_answers(&mut self, when: &str) {
        let status = self.s.fence_status(self.dev.device, self.fence);
        assert_eq!(
            status.ok().flatten(),
            Some(1),
            "the good client's vkGetFenceStatus {when}"
        );
    }
}

/// A hostile raw client with a device and ring 1.
struct Bad {
    s: Session,
    dev: Device,
    ring: Ring,
    name: String,
}

impl Bad {
    fn new(server: &Server, name: &str) -> Self {
        let mut s = Session::connect(server.socket(), name).expect("connect");
        let dev = s.setup(false).expect("setup");
        let ring = s.create_ring(1).expect("ring");
        Bad {
            s,
            dev,
            ring,
            name: name.to_string(),
        }
    }

    /// Publishes `cmds` (no reply) on the ring.
    fn publish(&mut self, cmds: &[Command<'_>]) {
        let list: Vec<(Command<'_>, u32)> = cmds.iter().map(|c| (*c, 0)).collect();
        let bytes = encode(&list);
        self.publish_bytes(&bytes);
    }

    fn publish_bytes(&mut self, bytes: &[u8]) {
        self.ring.publish(&mut self.s, bytes).expect("publish");
    }

    /// A command pool and a command buffer in the recording state.
    fn recording(&mut self) -> Id<venus_protocol::handles::CommandBuffer> {
        let device = self.dev.device;
        let pool = self.s.id();
        let cb = self.s.id();
        let alloc = CommandBufferAllocateInfo {
            command_pool: pool,
            command_buffer_count: 1,
            ..Default::default()
        };
        self.publish(&[
            Command::CreateCommandPool(CreateCommandPoolArgs {
                device,
                p_create_info: &CommandPoolCreateInfo::default(),
                p_command_pool: &pool,
            }),
            Command::AllocateCommandBuffers(AllocateCommandBuffersArgs {
                device,
                p_allocate_info: &alloc,
                p_command_buffers: &[cb],
            }),
            Command::BeginCommandBuffer(BeginCommandBufferArgs {
                command_buffer: cb,
                p_begin_info: &CommandBufferBeginInfo::default(),
            }),
        ]);
        cb
    }
}

/// Waits until the bad client's ring shows FATAL, then checks the one WARN line of its
/// context (containing every needle), that the server lives and that the good client answers.
fn assert_only_bad_ends(server: &mut Server, good: &mut Good, bad: Bad, needles: &[&str]) {
    let deadline = Instant::now() + TIMEOUT;
    let status = || {
        bad.ring
            .map
            .word(Ring::STATUS)
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    while status() & Ring::STATUS_FATAL == 0 {
        assert!(
            Instant::now() < deadline,
            "{}: the ring never showed FATAL (status {:#x}); log:\n{}",
            bad.name,
            status(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    server.assert_alive(&format!("after {}", bad.name));
    let ctx = context_of(&server.log_lines(), &bad.name)
        .unwrap_or_else(|| panic!("no context for {}; log:\n{}", bad.name, server.log_text()));
    let ctx_field = format!("ctx={ctx}");
    let of_ctx = |l: &str| l.contains(" WARN ") && l.split_whitespace().any(|w| w == ctx_field);
    let line = server.wait_line(&format!("the WARN line of {}", bad.name), TIMEOUT, |l| {
        of_ctx(l) && l.contains("context lost")
    });
    for needle in needles {
        assert!(
            line.text.contains(needle),
            "{}: the `context lost` line does not name {needle:?}: {}",
            bad.name,
            line.text
        );
    }
    good.assert_answers(&format!("after {}", bad.name));
    let warns: Vec<String> = server
        .log_lines()
        .into_iter()
        .filter(|l| of_ctx(&l.text))
        .map(|l| l.text)
        .collect();
    assert_eq!(warns.len(), 1, "{}: WARN lines: {warns:#?}", bad.name);
    eprintln!("{}: {}", bad.name, line.text);
    drop(bad);
}

/// Starts a server, a good client and a concurrent `vulkaninfo`; runs `cases`; checks that
/// the `vulkaninfo` and a later one succeeded and the server stops cleanly.
fn hostile(test: &str, cases: impl FnOnce(&mut Server, &mut Good)) {
    let Some(tools) = require(test, &[Tool::Vulkaninfo, Tool::VenusIcd, Tool::LavapipeIcd]) else {
        return;
    };
    let mut server = Server::start(&tools, &ServerOptions::default());
    let mut good = Good::new(&server);
    let vulkaninfo = server.spawn_vulkaninfo();
    cases(&mut server, &mut good);
    let out = wait_output(vulkaninfo, Duration::from_secs(60), "concurrent vulkaninfo");
    venus_testapps::server::assert_vulkaninfo_output(&out, &format!("during {test}"));
    server.assert_vulkaninfo_works(&format!("after {test}"));
    good.assert_answers("at the end");
    drop(good);
    server.stop();
}

#[test]
fn wrong_type_unknown_and_destroyed_ids() {
    hostile("wrong_type_unknown_and_destroyed_ids", |server, good| {
        let mut bad = Bad::new(server, "hostile-wrong-type");
        let queue = Id::from_raw(bad.dev.queue.raw());
        let device = bad.dev.device;
        bad.publish(&[Command::ResetFences(ResetFencesArgs {
            device,
            fence_count: 1,
            p_fences: &[queue],
        })]);
        let unknown = format!("unknown VkFence id {}", queue.raw());
        assert_only_bad_ends(server, good, bad, &["vkResetFences", &unknown]);

        let mut bad = Bad::new(server, "hostile-unknown");
        let device = bad.dev.device;
        bad.publish(&[Command::ResetFences(ResetFencesArgs {
            device,
            fence_count: 1,
            p_fences: &[Id::from_raw(0xdead_beef)],
        })]);
        let unknown = "unknown VkFence id 3735928559";
        assert_only_bad_ends(server, good, bad, &["vkResetFences", unknown]);

        let mut bad = Bad::new(server, "hostile-destroyed");
        let device = bad.dev.device;
        let fence = bad.s.create_fence(device).expect("fence");
        // The fence is created on the context stream: wait until the server has executed it
        // before the ring (another thread) destroys it.
        bad.s.vtest.ping().expect("ping");
        bad.publish(&[
            Command::DestroyFence(DestroyFenceArgs { device, fence }),
            Command::ResetFences(ResetFencesArgs {
                device,
                fence_count: 1,
                p_fences: &[fence],
            }),
        ]);
        let unknown = format!("unknown VkFence id {}", fence.raw());
        assert_only_bad_ends(server, good, bad, &["vkResetFences", &unknown]);
    });
}

#[test]
fn array_count_beyond_the_stream() {
    hostile("array_count_beyond_the_stream", |server, good| {
        let mut bad = Bad::new(server, "hostile-count");
        let cb = bad.recording();
        let viewport = [Viewport {
            width: 16.0,
            height: 16.0,
            max_depth: 1.0,
            ..Default::default()
        }];
        let mut bytes = encode(&[(
            Command::CmdSetViewport(CmdSetViewportArgs {
                command_buffer: cb,
                first_viewport: 0,
                viewport_count: 1,
                p_viewports: &viewport,
            }),
            0,
        )]);
        // type, flags, commandBuffer (8), firstViewport, viewportCount, the array's size (8).
        assert_eq!(&bytes[20..24], &1u32.to_le_bytes(), "viewportCount at 20");
        assert_eq!(&bytes[24..32], &1u64.to_le_bytes(), "array size at 24");
        bytes[20..24].copy_from_slice(&1_000_000u32.to_le_bytes());
        bytes[24..32].copy_from_slice(&1_000_000u64.to_le_bytes());
        bad.publish_bytes(&bytes);
        assert_only_bad_ends(server, good, bad, &["vkCmdSetViewport", "pViewports"]);
    });
}

#[test]
fn pnext_unknown_stypes_and_endless_chains() {
    hostile("pnext_unknown_stypes_and_endless_chains", |server, good| {
        let mut bad = Bad::new(server, "hostile-unknown-stype");
        let fence = bad.s.id();
        let export = Ext::ExportFenceCreateInfo(ExportFenceCreateInfo::default());
        let info = FenceCreateInfo {
            p_next: Some(&export),
            ..Default::default()
        };
        let mut bytes = encode(&[(
            Command::CreateFence(CreateFenceArgs {
                device: bad.dev.device,
                p_create_info: &info,
                p_fence: &fence,
            }),
            0,
        )]);
        let known = ExportFenceCreateInfo::STRUCTURE_TYPE.0.to_le_bytes();
        let at = bytes
            .windows(4)
            .position(|w| w == known)
            .expect("the link's sType in the bytes");
        bytes[at..at + 4].copy_from_slice(&0x7fee_0001i32.to_le_bytes());
        bad.publish_bytes(&bytes);
        assert_only_bad_ends(server, good, bad, &["vkCreateFence", "pNext"]);

        let mut bad = Bad::new(server, "hostile-257-links");
        // The root and 257 links: one more than the decoder's limit of 256.
        let features = features2_with_links(257);
        bad.publish(&[Command::GetPhysicalDeviceFeatures2(
            GetPhysicalDeviceFeatures2Args {
                physical_device: bad.dev.physical_device,
                p_features: &features,
            },
        )]);
        let needles = ["vkGetPhysicalDeviceFeatures2", "256"];
        assert_only_bad_ends(server, good, bad, &needles);
    });
}

/// `VkPhysicalDeviceFeatures2` followed by `n` links (leaked: a few KiB for the test).
fn features2_with_links(n: usize) -> PhysicalDeviceFeatures2<'static> {
    let mut next: venus_protocol::Chain<'static> = None;
    for _ in 0..n {
        // A small link, so that the chain fits the test's 16 KiB ring.
        let link = Ext::PhysicalDevicePrivateDataFeatures(PhysicalDevicePrivateDataFeatures {
            p_next: next,
            private_data: 0,
        });
        next = Some(&*Box::leak(Box::new(link)));
    }
    PhysicalDeviceFeatures2 {
        p_next: next,
        ..Default::default()
    }
}

#[test]
fn degenerate_clear_rects_and_empty_buffers() {
    hostile(
        "degenerate_clear_rects_and_empty_buffers",
        |server, good| {
            for (name, rect, needle) in [
                ("hostile-clear-width", (0, 16, 1), "rect.extent.width is 0"),
                ("hostile-clear-layers", (16, 16, 0), "layerCount is 0"),
            ] {
                let mut bad = Bad::new(server, name);
                let cb = bad.recording();
                let rects = [ClearRect {
                    rect: Rect2D {
                        extent: Extent2D {
                            width: rect.0,
                            height: rect.1,
                        },
                        ..Default::default()
                    },
                    base_array_layer: 0,
                    layer_count: rect.2,
                }];
                let attachments = [ClearAttachment {
                    aspect_mask: ImageAspectFlags::COLOR_BIT,
                    ..Default::default()
                }];
                bad.publish(&[Command::CmdClearAttachments(CmdClearAttachmentsArgs {
                    command_buffer: cb,
                    attachment_count: 1,
                    p_attachments: &attachments,
                    rect_count: 1,
                    p_rects: &rects,
                })]);
                let needles = [
                    "vkCmdClearAttachments",
                    needle,
                    "VUID-vkCmdClearAttachments",
                ];
                assert_only_bad_ends(server, good, bad, &needles);
            }

            let mut bad = Bad::new(server, "hostile-buffer-size-0");
            let buffer = bad.s.id();
            let info = BufferCreateInfo {
                size: 0,
                usage: BufferUsageFlags::TRANSFER_DST_BIT,
                ..Default::default()
            };
            bad.publish(&[Command::CreateBuffer(CreateBufferArgs {
                device: bad.dev.device,
                p_create_info: &info,
                p_buffer: &buffer,
            })]);
            let needles = [
                "vkCreateBuffer",
                "size is 0",
                "VUID-VkBufferCreateInfo-size-00912",
            ];
            assert_only_bad_ends(server, good, bad, &needles);
        },
    );
}

#[test]
fn commands_of_extensions_not_advertised() {
    hostile("commands_of_extensions_not_advertised", |server, good| {
        // A Vulkan command only VK_KHR_deferred_host_operations provides: refused before any
        // handle is looked up or the driver is reached.
        let mut bad = Bad::new(server, "hostile-deferred-op");
        let op = bad.s.id();
        bad.publish(&[Command::CreateDeferredOperationKHR(
            CreateDeferredOperationKHRArgs {
                device: bad.dev.device,
                p_deferred_operation: &op,
            },
        )]);
        let needles = [
            "vkCreateDeferredOperationKHR",
            "VK_KHR_deferred_host_operations is not advertised",
        ];
        assert_only_bad_ends(server, good, bad, &needles);

        // A MESA command (spec 3, id 297) that serves VK_EXT_host_image_copy only.
        let mut bad = Bad::new(server, "hostile-host-image-copy");
        let info = CopyImageToMemoryInfoMESA {
            src_image: Id::from_raw(0xdead),
            ..Default::default()
        };
        bad.publish(&[Command::CopyImageToMemoryMESA(CopyImageToMemoryMESAArgs {
            device: bad.dev.device,
            p_copy_image_to_memory_info: &info,
            data_size: 16,
            p_data: &[0; 16],
        })]);
        let needles = [
            "vkCopyImageToMemoryMESA",
            "VK_EXT_host_image_copy is not advertised",
        ];
        assert_only_bad_ends(server, good, bad, &needles);
    });
}

#[test]
fn framebuffer_format_mismatch_and_zero_raster_samples() {
    hostile(
        "framebuffer_format_mismatch_and_zero_raster_samples",
        |server, good| {
            let mut bad = Bad::new(server, "hostile-format-mismatch");
            let view = color_view(&mut bad, Format::R8G8B8A8_UNORM);
            let pass = render_pass(&mut bad, Some(Format::B8G8R8A8_UNORM));
            let fb = bad.s.id();
            let info = FramebufferCreateInfo {
                render_pass: pass,
                attachment_count: 1,
                p_attachments: &[view],
                width: 16,
                height: 16,
                layers: 1,
                ..Default::default()
            };
            bad.publish(&[Command::CreateFramebuffer(CreateFramebufferArgs {
                device: bad.dev.device,
                p_create_info: &info,
                p_framebuffer: &fb,
            })]);
            let needles = [
                "vkCreateFramebuffer",
                "pAttachments[0]",
                "VUID-VkFramebufferCreateInfo-pAttachments-00880",
            ];
            assert_only_bad_ends(server, good, bad, &needles);

            let mut bad = Bad::new(server, "hostile-zero-samples");
            let pass = render_pass(&mut bad, None);
            let multisample = PipelineMultisampleStateCreateInfo {
                rasterization_samples: SampleCountFlagBits(0),
                ..Default::default()
            };
            let infos = [GraphicsPipelineCreateInfo {
                p_multisample_state: Some(&multisample),
                render_pass: pass,
                ..Default::default()
            }];
            let pipeline = bad.s.id();
            bad.publish(&[Command::CreateGraphicsPipelines(
                CreateGraphicsPipelinesArgs {
                    device: bad.dev.device,
                    pipeline_cache: Id::NULL,
                    create_info_count: 1,
                    p_create_infos: &infos,
                    p_pipelines: &[pipeline],
                },
            )]);
            let needles = [
                "vkCreateGraphicsPipelines",
                "rasterizationSamples 0x0",
                "VUID-VkPipelineMultisampleStateCreateInfo-rasterizationSamples-parameter",
            ];
            assert_only_bad_ends(server, good, bad, &needles);
        },
    );
}

/// A 16x16 color image (no memory) and a view of it in `format`.
fn color_view(bad: &mut Bad, format: Format) -> Id<venus_protocol::handles::ImageView> {
    let (image, view) = (bad.s.id(), bad.s.id());
    let device = bad.dev.device;
    let info = ImageCreateInfo {
        image_type: ImageType::TYPE_2D,
        format,
        extent: Extent3D {
            width: 16,
            height: 16,
            depth: 1,
        },
        mip_levels: 1,
        array_layers: 1,
        samples: SampleCountFlagBits::COUNT_1_BIT,
        usage: ImageUsageFlags::COLOR_ATTACHMENT_BIT,
        ..Default::default()
    };
    let view_info = ImageViewCreateInfo {
        image,
        view_type: ImageViewType::TYPE_2D,
        format,
        subresource_range: ImageSubresourceRange {
            aspect_mask: ImageAspectFlags::COLOR_BIT,
            level_count: 1,
            layer_count: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    bad.publish(&[
        Command::CreateImage(CreateImageArgs {
            device,
            p_create_info: &info,
            p_image: &image,
        }),
        Command::CreateImageView(CreateImageViewArgs {
            device,
            p_create_info: &view_info,
            p_view: &view,
        }),
    ]);
    view
}

/// A render pass with one color attachment of `format`, or none (attachment-less).
fn render_pass(bad: &mut Bad, format: Option<Format>) -> Id<venus_protocol::handles::RenderPass> {
    let pass = bad.s.id();
    let attachments: Vec<AttachmentDescription> = format
        .map(|format| AttachmentDescription {
            format,
            samples: SampleCountFlagBits::COUNT_1_BIT,
            final_layout: ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
            ..Default::default()
        })
        .into_iter()
        .collect();
    let color = [AttachmentReference {
        attachment: 0,
        layout: ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
    }];
    let n = attachments.len();
    let subpass = [SubpassDescription {
        pipeline_bind_point: PipelineBindPoint::GRAPHICS,
        color_attachment_count: n as u32,
        p_color_attachments: &color[..n],
        ..Default::default()
    }];
    let info = RenderPassCreateInfo {
        attachment_count: n as u32,
        p_attachments: &attachments,
        subpass_count: 1,
        p_subpasses: &subpass,
        ..Default::default()
    };
    bad.publish(&[Command::CreateRenderPass(CreateRenderPassArgs {
        device: bad.dev.device,
        p_create_info: &info,
        p_render_pass: &pass,
    })]);
    pass
}

/// Waits for the `context destroyed` line of client `name`.
fn assert_destroyed(server: &Server, name: &str) {
    let ctx = context_of(&server.log_lines(), name)
        .unwrap_or_else(|| panic!("no context for {name}; log:\n{}", server.log_text()));
    let field = format!("ctx={ctx}");
    server.wait_line(&format!("`context destroyed` of {name}"), TIMEOUT, |l| {
        l.contains("context destroyed") && l.split_whitespace().any(|w| w == field)
    });
}

#[test]
fn disconnect_in_the_middle_of_a_command() {
    hostile("disconnect_in_the_middle_of_a_command", |server, good| {
        // Half a vtest message: a SUBMIT_CMD2 header promising more dwords than follow.
        let mut bad = Bad::new(server, "hostile-half-vtest");
        let fence = bad.s.id();
        let cmd = encode(&[(
            Command::CreateFence(CreateFenceArgs {
                device: bad.dev.device,
                p_create_info: &FenceCreateInfo::default(),
                p_fence: &fence,
            }),
            0,
        )]);
        let msg = venus_testapps::vtest::submit_cmd2(0, &cmd);
        bad.s
            .vtest
            .send(&msg[..msg.len() / 2])
            .expect("half a message");
        let name = bad.name.clone();
        drop(bad);
        assert_destroyed(server, &name);
        server.assert_alive("after half a vtest message");
        good.assert_answers("after half a vtest message");

        // Half a ring command: the tail covers only the first half of its bytes.
        let mut bad = Bad::new(server, "hostile-half-ring");
        let fence = bad.s.id();
        let cmd = encode(&[(
            Command::CreateFence(CreateFenceArgs {
                device: bad.dev.device,
                p_create_info: &FenceCreateInfo::default(),
                p_fence: &fence,
            }),
            0,
        )]);
        bad.publish_bytes(&cmd[..cmd.len() / 2]);
        std::thread::sleep(Duration::from_millis(100));
        let name = bad.name.clone();
        drop(bad);
        assert_destroyed(server, &name);
        server.assert_alive("after half a ring command");
        good.assert_answers("after half a ring command");
    });
}

#[test]
fn sigkill_of_a_mesa_client_while_it_submits() {
    hostile(
        "sigkill_of_a_mesa_client_while_it_submits",
        |server, good| {
            let mut command = server.venus_client_feedback(env!("CARGO_BIN_EXE_venus-sync"));
            command.arg("submit-loop");
            let mut program = Program::spawn(command, "venus-sync submit-loop");
            program.wait_for_line("SUBMITTING", Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(200));
            good.assert_answers("while venus-sync submits");
            program.kill();
            assert_destroyed(server, "venus-sync");
            server.assert_alive("after the SIGKILL");
            good.assert_answers("after the SIGKILL");
        },
    );
}

/// A buffer of `size` bytes usable for transfers, indirect commands and storage (no memory).
fn buffer(bad: &mut Bad, size: u64) -> Id<venus_protocol::handles::Buffer> {
    let buffer = bad.s.id();
    let info = BufferCreateInfo {
        size,
        usage: BufferUsageFlags::TRANSFER_SRC_BIT
            | BufferUsageFlags::TRANSFER_DST_BIT
            | BufferUsageFlags::INDIRECT_BUFFER_BIT
            | BufferUsageFlags::STORAGE_BUFFER_BIT,
        ..Default::default()
    };
    bad.publish(&[Command::CreateBuffer(CreateBufferArgs {
        device: bad.dev.device,
        p_create_info: &info,
        p_buffer: &buffer,
    })]);
    buffer
}

/// A 16x16 RGBA8 image with one level and one layer, usable for transfers (no memory).
fn transfer_image(bad: &mut Bad) -> Id<venus_protocol::handles::Image> {
    let image = bad.s.id();
    let info = ImageCreateInfo {
        image_type: ImageType::TYPE_2D,
        format: Format::R8G8B8A8_UNORM,
        extent: Extent3D {
            width: 16,
            height: 16,
            depth: 1,
        },
        mip_levels: 1,
        array_layers: 1,
        samples: SampleCountFlagBits::COUNT_1_BIT,
        usage: ImageUsageFlags::TRANSFER_DST_BIT | ImageUsageFlags::TRANSFER_SRC_BIT,
        ..Default::default()
    };
    bad.publish(&[Command::CreateImage(CreateImageArgs {
        device: bad.dev.device,
        p_create_info: &info,
        p_image: &image,
    })]);
    image
}

/// A bad client that copies a `buffer_size`-byte buffer from `buffer_offset` into
/// [`transfer_image`] at `image_offset`, `image_extent` texels.
fn copy_buffer_to_image(
    server: &mut Server,
    name: &str,
    buffer_size: u64,
    buffer_offset: u64,
    image_offset: Offset3D,
    image_extent: Extent3D,
) -> Bad {
    let mut bad = Bad::new(server, name);
    let (src, image) = (buffer(&mut bad, buffer_size), transfer_image(&mut bad));
    let cb = bad.recording();
    let regions = [BufferImageCopy {
        buffer_offset,
        image_subresource: ImageSubresourceLayers {
            aspect_mask: ImageAspectFlags::COLOR_BIT,
            mip_level: 0,
            base_array_layer: 0,
            layer_count: 1,
        },
        image_offset,
        image_extent,
        ..Default::default()
    }];
    bad.publish(&[Command::CmdCopyBufferToImage(CmdCopyBufferToImageArgs {
        command_buffer: cb,
        src_buffer: src,
        dst_image: image,
        dst_image_layout: ImageLayout::TRANSFER_DST_OPTIMAL,
        region_count: 1,
        p_regions: &regions,
    })]);
    bad
}

/// Offsets, sizes, levels, layers and query indices outside the objects they name, and enum
/// values vk.xml does not define: lavapipe (a CPU driver) would read or write the server's
/// memory with them (three of these came from the `dispatch_lavapipe` fuzz target).
#[test]
fn ranges_outside_their_objects_and_undefined_values() {
    hostile(
        "ranges_outside_their_objects_and_undefined_values",
        |server, good| {
            // An image view of mip level 5 of a one-level image.
            let mut bad = Bad::new(server, "hostile-view-level");
            let image = transfer_image(&mut bad);
            let view = bad.s.id();
            let view_info = ImageViewCreateInfo {
                image,
                view_type: ImageViewType::TYPE_2D,
                format: Format::R8G8B8A8_UNORM,
                subresource_range: ImageSubresourceRange {
                    aspect_mask: ImageAspectFlags::COLOR_BIT,
                    base_mip_level: 5,
                    level_count: 1,
                    layer_count: 1,
                    ..Default::default()
                },
                ..Default::default()
            };
            bad.publish(&[Command::CreateImageView(CreateImageViewArgs {
                device: bad.dev.device,
                p_create_info: &view_info,
                p_view: &view,
            })]);
            let needles = [
                "vkCreateImageView",
                "mip level 5 + 1 is outside the image's 1",
                "VUID-VkImageViewCreateInfo-subresourceRange-01478",
            ];
            assert_only_bad_ends(server, good, bad, &needles);

            // A swizzle vk.xml does not define (fuzz finding crash-5f560037).
            let mut bad = Bad::new(server, "hostile-swizzle");
            let image = transfer_image(&mut bad);
            let view = bad.s.id();
            let view_info = ImageViewCreateInfo {
                components: ComponentMapping {
                    g: ComponentSwizzle(16777216),
                    ..Default::default()
                },
                subresource_range: ImageSubresourceRange {
                    base_mip_level: 0,
                    ..view_info.subresource_range
                },
                image,
                ..view_info
            };
            bad.publish(&[Command::CreateImageView(CreateImageViewArgs {
                device: bad.dev.device,
                p_create_info: &view_info,
                p_view: &view,
            })]);
            let needles = [
                "vkCreateImageView",
                "g ComponentSwizzle(16777216) is not a valid VkComponentSwizzle value",
                "VUID-VkComponentMapping-g-parameter",
            ];
            assert_only_bad_ends(server, good, bad, &needles);

            // A buffer copy reading past the source's end.
            let mut bad = Bad::new(server, "hostile-copy-buffer");
            let (src, dst) = (buffer(&mut bad, 256), buffer(&mut bad, 4096));
            let cb = bad.recording();
            let regions = [BufferCopy {
                src_offset: 200,
                dst_offset: 0,
                size: 100,
            }];
            bad.publish(&[Command::CmdCopyBuffer(CmdCopyBufferArgs {
                command_buffer: cb,
                src_buffer: src,
                dst_buffer: dst,
                region_count: 1,
                p_regions: &regions,
            })]);
            let needles = [
                "vkCmdCopyBuffer",
                "inside srcBuffer (element 0): offset 200 + 100 bytes exceeds the VkBuffer size 256",
                "VUID-vkCmdCopyBuffer-srcOffset-00113",
            ];
            assert_only_bad_ends(server, good, bad, &needles);

            // An indirect dispatch whose 12-byte command ends past the buffer.
            let mut bad = Bad::new(server, "hostile-dispatch-indirect");
            let args = buffer(&mut bad, 256);
            let cb = bad.recording();
            bad.publish(&[Command::CmdDispatchIndirect(CmdDispatchIndirectArgs {
                command_buffer: cb,
                buffer: args,
                offset: 248,
            })]);
            let needles = [
                "vkCmdDispatchIndirect",
                "offset 248 + 12 bytes exceeds the VkBuffer size 256",
                "VUID-vkCmdDispatchIndirect-offset-00407",
            ];
            assert_only_bad_ends(server, good, bad, &needles);

            // A buffer-to-image copy whose region leaves the 16x16 image.
            let bad = copy_buffer_to_image(
                server,
                "hostile-copy-to-image",
                4096,
                0,
                Offset3D { x: 8, y: 0, z: 0 },
                Extent3D {
                    width: 16,
                    height: 1,
                    depth: 1,
                },
            );
            let needles = [
                "vkCmdCopyBufferToImage",
                "x 8 + 16 is outside mip level 0 (16x16x1)",
                "VUID-vkCmdCopyBufferToImage-imageSubresource-07967",
            ];
            assert_only_bad_ends(server, good, bad, &needles);

            // A buffer-to-image copy of 16x16 RGBA8 texels (1024 bytes) from offset 4 of a
            // 1024-byte buffer.
            let bad = copy_buffer_to_image(
                server,
                "hostile-copy-from-buffer",
                1024,
                4,
                Offset3D::default(),
                Extent3D {
                    width: 16,
                    height: 16,
                    depth: 1,
                },
            );
            let needles = [
                "vkCmdCopyBufferToImage",
                "offset 4 + 1024 bytes exceeds the VkBuffer size 1024",
                "VUID-vkCmdCopyBufferToImage-pRegions-00171",
            ];
            assert_only_bad_ends(server, good, bad, &needles);

            // A descriptor write at element 5 of a one-descriptor binding (lavapipe would
            // write past the set's memory).
            let mut bad = Bad::new(server, "hostile-descriptor-write");
            let target = buffer(&mut bad, 256);
            let (set_layout, pool, set) = (bad.s.id(), bad.s.id(), bad.s.id());
            let bindings = [DescriptorSetLayoutBinding {
                binding: 0,
                descriptor_type: DescriptorType::STORAGE_BUFFER,
                descriptor_count: 1,
                stage_flags: ShaderStageFlags::COMPUTE_BIT,
                ..Default::default()
            }];
            let layout_info = DescriptorSetLayoutCreateInfo {
                binding_count: 1,
                p_bindings: &bindings,
                ..Default::default()
            };
            let sizes = [DescriptorPoolSize {
                ty: DescriptorType::STORAGE_BUFFER,
                descriptor_count: 1,
            }];
            let pool_info = DescriptorPoolCreateInfo {
                max_sets: 1,
                pool_size_count: 1,
                p_pool_sizes: &sizes,
                ..Default::default()
            };
            let alloc = DescriptorSetAllocateInfo {
                descriptor_pool: pool,
                descriptor_set_count: 1,
                p_set_layouts: &[set_layout],
                ..Default::default()
            };
            let infos = [DescriptorBufferInfo {
                buffer: target,
                offset: 0,
                range: 256,
            }];
            let writes = [WriteDescriptorSet {
                dst_set: set,
                dst_binding: 0,
                dst_array_element: 5,
                descriptor_count: 1,
                descriptor_type: DescriptorType::STORAGE_BUFFER,
                p_buffer_info: &infos,
                ..Default::default()
            }];
            bad.publish(&[
                Command::CreateDescriptorSetLayout(CreateDescriptorSetLayoutArgs {
                    device: bad.dev.device,
                    p_create_info: &layout_info,
                    p_set_layout: &set_layout,
                }),
                Command::CreateDescriptorPool(CreateDescriptorPoolArgs {
                    device: bad.dev.device,
                    p_create_info: &pool_info,
                    p_descriptor_pool: &pool,
                }),
                Command::AllocateDescriptorSets(AllocateDescriptorSetsArgs {
                    device: bad.dev.device,
                    p_allocate_info: &alloc,
                    p_descriptor_sets: &[set],
                }),
                Command::UpdateDescriptorSets(UpdateDescriptorSetsArgs {
                    device: bad.dev.device,
                    descriptor_write_count: 1,
                    p_descriptor_writes: &writes,
                    descriptor_copy_count: 0,
                    p_descriptor_copies: &[],
                }),
            ]);
            let needles = [
                "vkUpdateDescriptorSets",
                "pDescriptorWrites[0]: element 5 is past binding 0's 1 descriptors",
                "-dstArrayElement-00321",
            ];
            assert_only_bad_ends(server, good, bad, &needles);

            // Resetting queries 3..8 of a pool of 4.
            let mut bad = Bad::new(server, "hostile-query-range");
            let pool = bad.s.id();
            let info = QueryPoolCreateInfo {
                query_type: QueryType::OCCLUSION,
                query_count: 4,
                ..Default::default()
            };
            bad.publish(&[Command::CreateQueryPool(CreateQueryPoolArgs {
                device: bad.dev.device,
                p_create_info: &info,
                p_query_pool: &pool,
            })]);
            let cb = bad.recording();
            bad.publish(&[Command::CmdResetQueryPool(CmdResetQueryPoolArgs {
                command_buffer: cb,
                query_pool: pool,
                first_query: 3,
                query_count: 5,
            })]);
            let needles = [
                "vkCmdResetQueryPool",
                "queries 3 + 5 exceed the pool's 4",
                "VUID-vkCmdResetQueryPool-firstQuery-09436",
            ];
            assert_only_bad_ends(server, good, bad, &needles);

            // Binding a buffer where its memory requirement runs past the allocation.
            let mut bad = Bad::new(server, "hostile-bind-range");
            let target = buffer(&mut bad, 1024);
            let memory = bad.s.id();
            let alloc = MemoryAllocateInfo {
                allocation_size: 4096,
                memory_type_index: 0,
                ..Default::default()
            };
            let binds = [BindBufferMemoryInfo {
                buffer: target,
                memory,
                memory_offset: 3840,
                ..Default::default()
            }];
            bad.publish(&[
                Command::AllocateMemory(AllocateMemoryArgs {
                    device: bad.dev.device,
                    p_allocate_info: &alloc,
                    p_memory: &memory,
                }),
                Command::BindBufferMemory2(BindBufferMemory2Args {
                    device: bad.dev.device,
                    bind_info_count: 1,
                    p_bind_infos: &binds,
                }),
            ]);
            let needles = [
                "vkBindBufferMemory2",
                "offset 3840 + 1024 bytes exceeds the VkDeviceMemory size 4096",
                "VUID-VkBindBufferMemoryInfo-size-01037",
            ];
            assert_only_bad_ends(server, good, bad, &needles);
        },
    );
}
