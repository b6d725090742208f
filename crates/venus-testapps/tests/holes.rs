//! Regression tests for holes between what the wire carries and what the host driver reads
//! or writes, against the real lavapipe path, with a raw Venus client and a recording
//! command buffer: `vkCmdDrawMultiEXT`/`vkCmdDrawMultiIndexedEXT` with a huge stride,
//! `vkGetQueryPoolResults` with a stride × count far past `dataSize`, `vkCmdPushConstants`
//! past `maxPushConstantsSize`, `vkCmdSetViewport` with `firstViewport` 1000; and, on a ring,
//! `vkGetPhysicalDeviceFeatures2` with a 256-link output chain (once a ring-thread stack
//! overflow that killed the server).
//!
//! For each: the server survives, and either the context is lost with a WARN `context lost`
//! line naming the command, or the command was executed safely and a following synchronous
//! call (`vkGetFenceStatus`) still answers. Which one happened is printed. A concurrent
//! `vulkaninfo --summary` works afterwards.

use std::time::Duration;

use venus_protocol::commands::*;
use venus_protocol::structs::*;
use venus_protocol::types::*;
use venus_protocol::{Command, Id};
use venus_testapps::server::{Server, ServerOptions};
use venus_testapps::tools::{require, Tool};
use venus_testapps::venus::Session;

type CommandBuffer = Id<venus_protocol::handles::CommandBuffer>;

/// What the client has when the bad command is sent.
struct Recording {
    session: Session,
    device: Id<venus_protocol::handles::Device>,
    fence: Id<venus_protocol::handles::Fence>,
    cb: CommandBuffer,
    layout: Id<venus_protocol::handles::PipelineLayout>,
    query_pool: Id<venus_protocol::handles::QueryPool>,
}

/// Instance, device (with VK_EXT_multi_draw), fence, command pool, a command buffer in the
/// recording state, a pipeline layout with 16 bytes of push constants, a 16-query pool.
fn recording(server: &Server, name: &str) -> std::io::Result<Recording> {
    let mut s = Session::connect(server.socket(), name)?;
    let dev = s.setup(true)?;
    eprintln!("{name}: VK_EXT_multi_draw enabled: {}", dev.multi_draw);
    let device = dev.device;
    let fence = s.create_fence(device)?;
    let pool = s.id();
    s.send(Command::CreateCommandPool(CreateCommandPoolArgs {
        device,
        p_create_info: &CommandPoolCreateInfo::default(),
        p_command_pool: &pool,
    }))?;
    let cb = s.id();
    let alloc = CommandBufferAllocateInfo {
        command_pool: pool,
        command_buffer_count: 1,
        ..Default::default()
    };
    s.send(Command::AllocateCommandBuffers(
        AllocateCommandBuffersArgs {
            device,
            p_allocate_info: &alloc,
            p_command_buffers: &[cb],
        },
    ))?;
    s.send(Command::BeginCommandBuffer(BeginCommandBufferArgs {
        command_buffer: cb,
        p_begin_info: &CommandBufferBeginInfo::default(),
    }))?;
    let layout = s.id();
    let range = [PushConstantRange {
        stage_flags: ShaderStageFlags::COMPUTE_BIT,
        offset: 0,
        size: 16,
    }];
    let info = PipelineLayoutCreateInfo {
        push_constant_range_count: 1,
        p_push_constant_ranges: &range,
        ..Default::default()
    };
    s.send(Command::CreatePipelineLayout(CreatePipelineLayoutArgs {
        device,
        p_create_info: &info,
        p_pipeline_layout: &layout,
    }))?;
    let query_pool = s.id();
    let qinfo = QueryPoolCreateInfo {
        query_type: QueryType::OCCLUSION,
        query_count: 16,
        ..Default::default()
    };
    s.send(Command::CreateQueryPool(CreateQueryPoolArgs {
        device,
        p_create_info: &qinfo,
        p_query_pool: &query_pool,
    }))?;
    Ok(Recording {
        session: s,
        device,
        fence,
        cb,
        layout,
        query_pool,
    })
}

/// Runs one hole case: `bad` sends the offending command (and may read its reply). `needle`
/// is what the WARN line must contain if the server chooses to lose the context.
fn hole_case(test: &str, needle: &str, bad: impl FnOnce(&mut Recording) -> std::io::Result<()>) {
    let Some(tools) = require(test, &[Tool::Vulkaninfo, Tool::VenusIcd, Tool::LavapipeIcd]) else {
        return;
    };
    let mut server = Server::start(&tools, &ServerOptions::default());
    let name = "venus-holes";
    let mut r = recording(&server, name).unwrap_or_else(|e| {
        panic!(
            "{test}: setup failed: {e}; server log:\n{}",
            server.log_text()
        )
    });
    // The context answers before the bad command (VK_NOT_READY: never submitted).
    let before = r
        .session
        .fence_status(r.device, r.fence)
        .expect("vkGetFenceStatus");
    assert_eq!(before, Some(1), "vkGetFenceStatus before the bad command");

    let sent = bad(&mut r);
    let after = sent.and_then(|()| r.session.fence_status(r.device, r.fence));
    if !matches!(after, Ok(Some(_))) {
        // A dead server resets the connection a moment before it can be reaped.
        std::thread::sleep(Duration::from_millis(500));
    }
    server.assert_alive(&format!("after {needle} ({after:?})"));
    match after {
        Ok(Some(status)) => {
            assert_eq!(status, 1, "vkGetFenceStatus after {needle}");
            eprintln!("{test}: {needle} executed safely; the context still answers");
        }
        outcome => {
            let line = server.try_wait_line(Duration::from_secs(5), |l| {
                l.contains(" WARN ") && l.contains("context lost")
            });
            let line = line.unwrap_or_else(|| {
                panic!(
                    "{test}: no reply after {needle} ({outcome:?}) and no `context lost` \
                     warning; log:\n{}",
                    server.log_text()
                )
            });
            assert!(
                line.text.contains(needle),
                "{test}: the `context lost` line does not name {needle}: {}",
                line.text
            );
            eprintln!("{test}: context lost: {}", line.text);
        }
    }
    server.assert_vulkaninfo_works(&format!("after {needle}"));
    drop(r);
    server.stop();
}

#[test]
fn draw_multi_with_a_huge_stride() {
    hole_case("draw_multi_with_a_huge_stride", "vkCmdDrawMultiEXT", |r| {
        let info = [MultiDrawInfoEXT {
            first_vertex: 0,
            vertex_count: 3,
        }; 4];
        r.session
            .send(Command::CmdDrawMultiEXT(CmdDrawMultiEXTArgs {
                command_buffer: r.cb,
                draw_count: 4,
                p_vertex_info: &info,
                instance_count: 1,
                first_instance: 0,
                stride: 1 << 30,
            }))
    });
}

#[test]
fn draw_multi_indexed_with_a_huge_stride() {
    hole_case(
        "draw_multi_indexed_with_a_huge_stride",
        "vkCmdDrawMultiIndexedEXT",
        |r| {
            let info = [MultiDrawIndexedInfoEXT {
                first_index: 0,
                index_count: 3,
                vertex_offset: 0,
            }; 4];
            r.session.send(Command::CmdDrawMultiIndexedEXT(
                CmdDrawMultiIndexedEXTArgs {
                    command_buffer: r.cb,
                    draw_count: 4,
                    p_index_info: &info,
                    instance_count: 1,
                    first_instance: 0,
                    stride: 1 << 30,
                    p_vertex_offset: None,
                },
            ))
        },
    );
}

#[test]
fn query_pool_results_past_data_size() {
    hole_case(
        "query_pool_results_past_data_size",
        "vkGetQueryPoolResults",
        |r| {
            let reply = r
                .session
                .call(Command::GetQueryPoolResults(GetQueryPoolResultsArgs {
                    device: r.device,
                    query_pool: r.query_pool,
                    first_query: 0,
                    query_count: 16,
                    data_size: 8,
                    p_data: &[0; 8],
                    stride: 1 << 20,
                    // Availability is written even for queries that never ran, so the
                    // driver writes all 16 strides.
                    flags: QueryResultFlags::WITH_AVAILABILITY_BIT,
                }))?;
            eprintln!(
                "vkGetQueryPoolResults reply: {:?}",
                reply
                    .as_ref()
                    .map(|b| venus_testapps::venus::reply_result(b))
            );
            Ok(())
        },
    );
}

#[test]
fn push_constants_past_the_limit() {
    hole_case("push_constants_past_the_limit", "vkCmdPushConstants", |r| {
        r.session
            .send(Command::CmdPushConstants(CmdPushConstantsArgs {
                command_buffer: r.cb,
                layout: r.layout,
                stage_flags: ShaderStageFlags::COMPUTE_BIT,
                offset: 4096,
                size: 16,
                p_values: &[0xab; 16],
            }))
    });
}

#[test]
fn set_viewport_past_the_limit() {
    hole_case("set_viewport_past_the_limit", "vkCmdSetViewport", |r| {
        let viewport = [Viewport {
            x: 0.0,
            y: 0.0,
            width: 16.0,
            height: 16.0,
            min_depth: 0.0,
            max_depth: 1.0,
        }];
        r.session.send(Command::CmdSetViewport(CmdSetViewportArgs {
            command_buffer: r.cb,
            first_viewport: 1000,
            viewport_count: 1,
            p_viewports: &viewport,
        }))
    });
}

/// `vkGetPhysicalDeviceFeatures2` (with reply) on a ring, its output chain 256 links long (the
/// decoder's limit: `VkPhysicalDeviceFeatures2` and 255 feature structs). Lowering and raising
/// recursed per link, so such a chain overflowed the ring thread's stack and killed the whole
/// server (vkcube on a newer Mesa). The server must survive, the context either answers (reply
/// and a following `vkGetFenceStatus`) or is lost with a WARN line naming the command, and a
/// vulkaninfo started at the same time works.
#[test]
fn features2_with_a_256_link_chain_on_a_ring() {
    let test = "features2_with_a_256_link_chain_on_a_ring";
    let Some(tools) = require(test, &[Tool::Vulkaninfo, Tool::VenusIcd, Tool::LavapipeIcd]) else {
        return;
    };
    let mut server = Server::start(&tools, &ServerOptions::default());
    let mut s = Session::connect(server.socket(), "venus-holes-chain").expect("connect");
    let dev = s.setup(false).expect("setup");
    let fence = s.create_fence(dev.device).expect("fence");
    let mut ring = s.create_ring(1).expect("ring");

    let features = features2_with_255_links();
    let cmd = Command::GetPhysicalDeviceFeatures2(GetPhysicalDeviceFeatures2Args {
        physical_device: dev.physical_device,
        p_features: &features,
    });
    let ty = cmd.command_type().0;
    let mut bytes = s.set_reply();
    bytes.extend(venus_testapps::venus::encode(&[(
        cmd,
        venus_protocol::COMMAND_GENERATE_REPLY,
    )]));
    eprintln!("{test}: {} bytes on the ring", bytes.len());

    let vulkaninfo = server.spawn_vulkaninfo();
    ring.publish(&mut s, &bytes).expect("publish");
    let consumed = ring.wait_consumed(Duration::from_secs(10));
    let reply = s.take_reply(ty);
    if reply.is_none() {
        // A dead server resets the connection a moment before it can be reaped.
        std::thread::sleep(Duration::from_millis(500));
    }
    server.assert_alive(&format!(
        "after vkGetPhysicalDeviceFeatures2 with 256 links (consumed {consumed})"
    ));
    match reply {
        Some(_) => {
            let status = s.fence_status(dev.device, fence).expect("vkGetFenceStatus");
            assert_eq!(status, Some(1), "vkGetFenceStatus after the 256-link query");
            eprintln!("{test}: replied; the context still answers");
        }
        None => {
            let line = server
                .try_wait_line(Duration::from_secs(5), |l| {
                    l.contains(" WARN ") && l.contains("context lost")
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{test}: no reply (consumed {consumed}) and no `context lost` warning; \
                         log:\n{}",
                        server.log_text()
                    )
                });
            assert!(
                line.text.contains("vkGetPhysicalDeviceFeatures2"),
                "{test}: the `context lost` line does not name the command: {}",
                line.text
            );
            eprintln!("{test}: context lost: {}", line.text);
        }
    }
    let out = venus_testapps::server::wait_output(
        vulkaninfo,
        Duration::from_secs(60),
        "concurrent vulkaninfo",
    );
    venus_testapps::server::assert_vulkaninfo_output(&out, "during the 256-link query");
    server.assert_vulkaninfo_works("after the 256-link query");
    drop(ring);
    drop(s);
    server.stop();
}

/// `VkPhysicalDeviceFeatures2` whose chain holds 255 feature structs in turn (256 links in
/// all; repeated sTypes are fine for the driver's features query). The links are leaked: they
/// live for the whole test (a few KiB).
fn features2_with_255_links() -> PhysicalDeviceFeatures2<'static> {
    let mut next: venus_protocol::Chain<'static> = None;
    for i in (0..255).rev() {
        let link = match i % 3 {
            0 => Ext::PhysicalDeviceVulkan11Features(PhysicalDeviceVulkan11Features {
                p_next: next,
                ..Default::default()
            }),
            1 => Ext::PhysicalDeviceVulkan12Features(PhysicalDeviceVulkan12Features {
                p_next: next,
                ..Default::default()
            }),
            _ => Ext::PhysicalDeviceVulkan13Features(PhysicalDeviceVulkan13Features {
                p_next: next,
                ..Default::default()
            }),
        };
        next = Some(&*Box::leak(Box::new(link)));
    }
    PhysicalDeviceFeatures2 {
        p_next: next,
        ..Default::default()
    }
}
