//! The byte-level examples of `venus-wire-format.md` §16, reproduced byte for byte in both
//! directions (encode the typed value; decode the bytes and re-encode them).

use venus_protocol::commands::*;
use venus_protocol::structs::*;
use venus_protocol::types::*;
use venus_protocol::{
    decode_command, decode_reply, encode_command, Arena, Command, Decoder, Encoder, Id, Reply,
};

/// Parses the spec's hex dumps: `offset  bytes...  comment`; `(N × M zero bytes)` expands.
fn hex(dump: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in dump.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let _offset = words.next();
        for w in words {
            if w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit()) {
                out.push(u8::from_str_radix(w, 16).unwrap());
            } else {
                break;
            }
        }
    }
    out
}

fn roundtrip_command(bytes: &[u8]) -> (u32, Vec<u8>) {
    let arena = Arena::new();
    let mut d = Decoder::new(bytes, &arena);
    let (header, cmd) = decode_command(&mut d).expect("decodes");
    assert!(d.is_empty(), "trailing bytes after the command");
    let mut e = Encoder::new();
    encode_command(&mut e, &cmd, header.flags);
    (header.flags, e.into_bytes())
}

fn roundtrip_reply(bytes: &[u8]) -> Vec<u8> {
    let arena = Arena::new();
    let mut d = Decoder::new(bytes, &arena);
    let reply = decode_reply(&mut d).expect("decodes");
    assert!(d.is_empty(), "trailing bytes after the reply");
    let mut e = Encoder::new();
    reply.encode(&mut e);
    e.into_bytes()
}

const CREATE_BUFFER: &str = "
0000  32 00 00 00
0004  01 00 00 00
0008  02 00 00 00 00 00 00 00
0010  01 00 00 00 00 00 00 00
0018  0c 00 00 00
001c  00 00 00 00 00 00 00 00
0024  00 00 00 00
0028  00 00 01 00 00 00 00 00
0030  82 00 00 00
0034  00 00 00 00
0038  00 00 00 00
003c  00 00 00 00 00 00 00 00
0044  00 00 00 00 00 00 00 00
004c  01 00 00 00 00 00 00 00
0054  10 00 00 00 00 00 00 00
";

const CREATE_BUFFER_REPLY: &str = "
0000  32 00 00 00
0004  00 00 00 00
0008  01 00 00 00 00 00 00 00
0010  10 00 00 00 00 00 00 00
";

#[test]
fn create_buffer_request_and_reply() {
    let bytes = hex(CREATE_BUFFER);
    assert_eq!(bytes.len(), 92);

    // Typed value -> bytes.
    let info = BufferCreateInfo {
        size: 65536,
        usage: BufferUsageFlags::VERTEX_BUFFER_BIT | BufferUsageFlags::TRANSFER_DST_BIT,
        sharing_mode: SharingMode::EXCLUSIVE,
        ..Default::default()
    };
    let buffer = Id::from_raw(16);
    let cmd = Command::CreateBuffer(CreateBufferArgs {
        device: Id::from_raw(2),
        p_create_info: &info,
        p_buffer: &buffer,
    });
    let mut e = Encoder::new();
    encode_command(&mut e, &cmd, 1);
    assert_eq!(e.as_bytes(), &bytes[..]);

    // Bytes -> typed value -> bytes.
    let arena = Arena::new();
    let mut d = Decoder::new(&bytes, &arena);
    let (header, decoded) = decode_command(&mut d).unwrap();
    assert!(header.wants_reply());
    let Command::CreateBuffer(args) = decoded else {
        panic!("wrong command {decoded:?}")
    };
    assert_eq!(args.device.raw(), 2);
    assert_eq!(args.p_create_info.size, 65536);
    assert_eq!(args.p_create_info.usage.0, 0x82);
    assert_eq!(args.p_buffer.raw(), 16);
    assert_eq!(roundtrip_command(&bytes), (1, bytes.clone()));

    // Without the reply bit only offset 4 changes.
    let mut async_bytes = bytes.clone();
    async_bytes[4] = 0;
    assert_eq!(roundtrip_command(&async_bytes), (0, async_bytes.clone()));

    let reply = hex(CREATE_BUFFER_REPLY);
    assert_eq!(reply.len(), 24);
    let mut e = Encoder::new();
    Reply::CreateBuffer(CreateBufferReply {
        ret: VkResult::SUCCESS,
        p_buffer: &buffer,
    })
    .encode(&mut e);
    assert_eq!(e.as_bytes(), &reply[..]);
    assert_eq!(roundtrip_reply(&reply), reply);
}

const CMD_DRAW: &str = "
0000  6a 00 00 00
0004  00 00 00 00
0008  21 00 00 00 00 00 00 00
0010  03 00 00 00
0014  01 00 00 00
0018  00 00 00 00
001c  00 00 00 00
";

#[test]
fn cmd_draw() {
    let bytes = hex(CMD_DRAW);
    assert_eq!(bytes.len(), 32);
    let cmd = Command::CmdDraw(CmdDrawArgs {
        command_buffer: Id::from_raw(0x21),
        vertex_count: 3,
        instance_count: 1,
        first_vertex: 0,
        first_instance: 0,
    });
    let mut e = Encoder::new();
    encode_command(&mut e, &cmd, 0);
    assert_eq!(e.as_bytes(), &bytes[..]);
    assert_eq!(roundtrip_command(&bytes), (0, bytes.clone()));
    // The reply of a void command without outputs is the echoed type alone.
    let mut e = Encoder::new();
    Reply::CmdDraw(CmdDrawReply {}).encode(&mut e);
    assert_eq!(e.as_bytes(), &[0x6a, 0, 0, 0]);
}

const MEMPROPS2: &str = "
0000  98 00 00 00
0004  01 00 00 00
0008  05 00 00 00 00 00 00 00
0010  01 00 00 00 00 00 00 00
0018  7e b0 9b 3b
001c  00 00 00 00 00 00 00 00
0024  20 00 00 00 00 00 00 00
002c  10 00 00 00 00 00 00 00
";

fn memprops_reply_prefix() -> Vec<u8> {
    hex("
0000  98 00 00 00
0004  01 00 00 00 00 00 00 00
000c  7e b0 9b 3b
")
}

fn memory_properties() -> PhysicalDeviceMemoryProperties {
    let mut p = PhysicalDeviceMemoryProperties {
        memory_type_count: 2,
        memory_heap_count: 1,
        ..Default::default()
    };
    p.memory_types[0] = MemoryType {
        property_flags: MemoryPropertyFlags::DEVICE_LOCAL_BIT,
        heap_index: 0,
    };
    p.memory_types[1] = MemoryType {
        property_flags: MemoryPropertyFlags(
            MemoryPropertyFlags::DEVICE_LOCAL_BIT.0
                | MemoryPropertyFlags::HOST_VISIBLE_BIT.0
                | MemoryPropertyFlags::HOST_COHERENT_BIT.0,
        ),
        heap_index: 0,
    };
    p.memory_heaps[0] = MemoryHeap {
        size: 0x2_0000_0000,
        flags: MemoryHeapFlags::DEVICE_LOCAL_BIT,
    };
    p
}

/// The reply body after the chain: memoryTypeCount, 32 types, memoryHeapCount, 16 heaps.
fn memory_properties_bytes() -> Vec<u8> {
    let mut b = hex("
0018  02 00 00 00
001c  20 00 00 00 00 00 00 00
0024  01 00 00 00 00 00 00 00
002c  07 00 00 00 00 00 00 00
");
    b.extend(std::iter::repeat_n(0, 30 * 8));
    b.extend(hex("
0124  01 00 00 00
0128  10 00 00 00 00 00 00 00
0130  00 00 00 00 02 00 00 00
0138  01 00 00 00
"));
    b.extend(std::iter::repeat_n(0, 15 * 12));
    b
}

#[test]
fn physical_device_memory_properties2() {
    let request = hex(MEMPROPS2);
    assert_eq!(request.len(), 52);
    let out = PhysicalDeviceMemoryProperties2::default();
    let cmd = Command::GetPhysicalDeviceMemoryProperties2(GetPhysicalDeviceMemoryProperties2Args {
        physical_device: Id::from_raw(5),
        p_memory_properties: &out,
    });
    let mut e = Encoder::new();
    encode_command(&mut e, &cmd, 1);
    assert_eq!(e.as_bytes(), &request[..]);
    assert_eq!(roundtrip_command(&request), (1, request.clone()));

    let mut reply = memprops_reply_prefix();
    reply.extend(hex("0010  00 00 00 00 00 00 00 00"));
    reply.extend(memory_properties_bytes());
    assert_eq!(reply.len(), 496);
    let filled = PhysicalDeviceMemoryProperties2 {
        p_next: None,
        memory_properties: memory_properties(),
    };
    let mut e = Encoder::new();
    Reply::GetPhysicalDeviceMemoryProperties2(GetPhysicalDeviceMemoryProperties2Reply {
        p_memory_properties: &filled,
    })
    .encode(&mut e);
    assert_eq!(e.as_bytes(), &reply[..]);
    assert_eq!(roundtrip_reply(&reply), reply);
}

#[test]
fn physical_device_memory_properties2_with_budget_chain() {
    let mut request = hex(MEMPROPS2);
    request.truncate(0x1c);
    request.extend(hex("
001c  01 00 00 00 00 00 00 00
0024  c8 67 9e 3b
0028  00 00 00 00 00 00 00 00
0030  20 00 00 00 00 00 00 00
0038  10 00 00 00 00 00 00 00
"));
    assert_eq!(request.len(), 64);
    let budget = venus_protocol::structs::Ext::PhysicalDeviceMemoryBudgetPropertiesEXT(
        PhysicalDeviceMemoryBudgetPropertiesEXT::default(),
    );
    let out = PhysicalDeviceMemoryProperties2 {
        p_next: Some(&budget),
        ..Default::default()
    };
    let cmd = Command::GetPhysicalDeviceMemoryProperties2(GetPhysicalDeviceMemoryProperties2Args {
        physical_device: Id::from_raw(5),
        p_memory_properties: &out,
    });
    let mut e = Encoder::new();
    encode_command(&mut e, &cmd, 1);
    assert_eq!(e.as_bytes(), &request[..]);
    assert_eq!(roundtrip_command(&request), (1, request.clone()));

    // Reply: the chain (marker, sType, end, 16 budgets, 16 usages) comes before memoryProperties.
    let mut reply = memprops_reply_prefix();
    reply.extend(hex(
        "0010  01 00 00 00 00 00 00 00\n0018  c8 67 9e 3b\n001c  00 00 00 00 00 00 00 00",
    ));
    let mut heap_budget = [0u64; 16];
    let mut heap_usage = [0u64; 16];
    heap_budget[0] = 0x1_0000_0000;
    heap_usage[0] = 0x1234;
    reply.extend(16u64.to_le_bytes());
    heap_budget
        .iter()
        .for_each(|v| reply.extend(v.to_le_bytes()));
    reply.extend(16u64.to_le_bytes());
    heap_usage
        .iter()
        .for_each(|v| reply.extend(v.to_le_bytes()));
    reply.extend(memory_properties_bytes());
    // The spec text says "adds 292 bytes, for 788 in total": it counts the whole chain (20 bytes)
    // as added, but the chain replaces the 8-byte end marker of the chain-less reply, exactly as
    // in its own 64-byte request example (52 + 12). The reply is 496 + 12 + 2 * (8 + 128) = 780.
    assert_eq!(reply.len(), 780);
    let budget = venus_protocol::structs::Ext::PhysicalDeviceMemoryBudgetPropertiesEXT(
        PhysicalDeviceMemoryBudgetPropertiesEXT {
            p_next: None,
            heap_budget,
            heap_usage,
        },
    );
    let filled = PhysicalDeviceMemoryProperties2 {
        p_next: Some(&budget),
        memory_properties: memory_properties(),
    };
    let mut e = Encoder::new();
    Reply::GetPhysicalDeviceMemoryProperties2(GetPhysicalDeviceMemoryProperties2Reply {
        p_memory_properties: &filled,
    })
    .encode(&mut e);
    assert_eq!(e.as_bytes(), &reply[..]);
    assert_eq!(roundtrip_reply(&reply), reply);
}

/// `vkCmdSetSampleMaskEXT` (id 260) at git-70991d4c: `pSampleMask` is optional in vk.xml
/// 1.4.343, so a NULL mask (array size 0) decodes whatever `samples` says (the C renderer
/// reads that size unchecked since this level; at git-ca1e9220 it was a fatal mismatch). A
/// non-NULL mask must still have `(samples + 31) / 32` words.
#[test]
fn cmd_set_sample_mask_with_a_null_mask() {
    let null_mask = hex("
0000  04 01 00 00
0004  00 00 00 00
0008  07 00 00 00 00 00 00 00
0010  04 00 00 00
0014  00 00 00 00 00 00 00 00
");
    let arena = Arena::new();
    let mut d = Decoder::new(&null_mask, &arena);
    let (_, cmd) = decode_command(&mut d).expect("a NULL mask decodes");
    assert!(d.is_empty());
    let Command::CmdSetSampleMaskEXT(a) = cmd else {
        panic!("decoded {cmd:?}")
    };
    assert_eq!(a.command_buffer, Id::from_raw(7));
    assert_eq!(a.samples, SampleCountFlagBits::COUNT_4_BIT);
    assert!(a.p_sample_mask.is_empty());
    assert_eq!(roundtrip_command(&null_mask), (0, null_mask.clone()));

    // One word for 4 samples: the mask itself.
    let mut one = null_mask.clone();
    one[0x14] = 1;
    one.extend_from_slice(&0xau32.to_le_bytes());
    let arena = Arena::new();
    let mut d = Decoder::new(&one, &arena);
    let (_, cmd) = decode_command(&mut d).expect("a one-word mask decodes");
    let Command::CmdSetSampleMaskEXT(a) = cmd else {
        panic!("decoded {cmd:?}")
    };
    assert_eq!(a.p_sample_mask, &[0xa]);
    assert_eq!(roundtrip_command(&one), (0, one.clone()));

    // Two words for 4 samples: a count mismatch, at the array size.
    let mut two = null_mask.clone();
    two[0x14] = 2;
    two.extend_from_slice(&[0xff; 8]);
    let arena = Arena::new();
    let mut d = Decoder::new(&two, &arena);
    let err = decode_command(&mut d).expect_err("two words for 4 samples");
    let text = err.to_string();
    assert!(
        text.contains("vkCmdSetSampleMaskEXT.pSampleMask") && text.contains("2"),
        "{text}"
    );
}
