//! Hostile inputs: every malformed stream is an error value naming the command and field, never a
//! panic, an unbounded allocation or a deep recursion.

use venus_protocol::structs::*;
use venus_protocol::wire::MAX_CHAIN_LINKS;
use venus_protocol::{
    commands::*, decode_command, encode_command, Arena, Command, Decoder, Encoder, ErrorKind, Id,
};

fn decode_err(bytes: &[u8]) -> venus_protocol::DecodeError {
    let arena = Arena::new();
    let r = decode_command(&mut Decoder::new(bytes, &arena));
    r.expect_err("must not decode")
}

fn words(ws: &[u64]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn create_device_with_chain(links: usize) -> Vec<u8> {
    let arena = bumpalo_free_chain(links);
    let info = DeviceCreateInfo {
        p_next: arena,
        ..Default::default()
    };
    let dev = Id::from_raw(3);
    let cmd = Command::CreateDevice(CreateDeviceArgs {
        physical_device: Id::from_raw(2),
        p_create_info: &info,
        p_device: &dev,
    });
    let mut e = Encoder::new();
    encode_command(&mut e, &cmd, 0);
    e.into_bytes()
}

/// A chain of `n` VkPhysicalDeviceVulkan11Features links built by hand (leaked; test only).
fn bumpalo_free_chain(n: usize) -> venus_protocol::Chain<'static> {
    let mut next: venus_protocol::Chain<'static> = None;
    for i in 0..n {
        let link = Ext::PhysicalDeviceVulkan11Features(PhysicalDeviceVulkan11Features {
            p_next: next,
            storage_buffer16_bit_access: i as u32,
            ..Default::default()
        });
        next = Some(Box::leak(Box::new(link)));
    }
    next
}

#[test]
fn long_chains_roundtrip_and_overlong_chains_fail() {
    // 100 links: beyond the encoder's on-stack buffer, within the decoder's limit.
    let bytes = create_device_with_chain(100);
    let arena = Arena::new();
    let mut d = Decoder::new(&bytes, &arena);
    let (_, cmd) = decode_command(&mut d).unwrap();
    let mut e = Encoder::new();
    encode_command(&mut e, &cmd, 0);
    assert_eq!(e.as_bytes(), &bytes[..]);

    let err = decode_err(&create_device_with_chain(MAX_CHAIN_LINKS + 1));
    assert_eq!(
        err.kind(),
        ErrorKind::ChainTooLong {
            max: MAX_CHAIN_LINKS
        }
    );
    assert!(
        err.to_string()
            .starts_with("vkCreateDevice.pCreateInfo.pNext"),
        "{err}"
    );
}

#[test]
fn unknown_chain_link_is_named() {
    // vkCreateBuffer with a VkMemoryAllocateInfo-only link (VkMemoryDedicatedAllocateInfo) in
    // VkBufferCreateInfo's chain.
    let mut b = Vec::new();
    b.extend(50i32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(words(&[2, 1]));
    b.extend(12i32.to_le_bytes());
    b.extend(words(&[1]));
    b.extend(1000127001i32.to_le_bytes());
    b.extend(words(&[0; 8]));
    let err = decode_err(&b);
    assert_eq!(
        err.kind(),
        ErrorKind::UnknownChainStruct { s_type: 1000127001 }
    );
    assert!(
        err.to_string().contains("vkCreateBuffer.pCreateInfo.pNext"),
        "{err}"
    );
}

#[test]
fn count_mismatch_and_bad_stype_are_named() {
    // vkCreateBuffer: queueFamilyIndexCount 2 but the array says 3.
    let mut b = Vec::new();
    b.extend(50i32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(words(&[2, 1]));
    b.extend(12i32.to_le_bytes());
    b.extend(words(&[0]));
    b.extend(0u32.to_le_bytes()); // flags
    b.extend(words(&[4096])); // size
    b.extend(0x82u32.to_le_bytes());
    b.extend(1i32.to_le_bytes()); // CONCURRENT
    b.extend(2u32.to_le_bytes()); // queueFamilyIndexCount
    b.extend(words(&[3]));
    b.extend([0u8; 12]);
    b.extend(words(&[0, 1, 16]));
    let err = decode_err(&b);
    assert_eq!(
        err.kind(),
        ErrorKind::CountMismatch {
            got: 3,
            expected: 2
        }
    );
    assert_eq!(
        err.to_string().split(':').next().unwrap(),
        "vkCreateBuffer.pCreateInfo.pQueueFamilyIndices"
    );

    // Wrong sType for pCreateInfo.
    let mut b2 = b.clone();
    b2[24] = 13;
    let err = decode_err(&b2);
    assert_eq!(
        err.kind(),
        ErrorKind::BadStructureType {
            got: 13,
            expected: 12
        }
    );
    assert!(err.to_string().contains("pCreateInfo.sType"), "{err}");
}

#[test]
fn allocator_must_be_null_and_create_info_must_be_present() {
    // vkDestroyBuffer(device 2, buffer 3, pAllocator = 1).
    let mut b = Vec::new();
    b.extend(51i32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(words(&[2, 3, 1]));
    assert_eq!(decode_err(&b).kind(), ErrorKind::MustBeNull);
    // vkCreateBuffer with pCreateInfo NULL.
    let mut b = Vec::new();
    b.extend(50i32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(words(&[2, 0, 0, 1, 16]));
    let err = decode_err(&b);
    assert_eq!(err.kind(), ErrorKind::NullRequired);
    assert!(
        err.to_string().contains("vkCreateBuffer.pCreateInfo"),
        "{err}"
    );
}

#[test]
fn huge_counts_are_bounded_by_the_arena_not_allocated() {
    // vkGetPhysicalDeviceQueueFamilyProperties(physicalDevice, pCount=&N, pProps: count N):
    // the partial VkQueueFamilyProperties is empty, so N elements cost no input bytes.
    let n = u64::from(u32::MAX);
    let mut b = Vec::new();
    b.extend(7i32.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    b.extend(words(&[5, 1]));
    b.extend((n as u32).to_le_bytes());
    b.extend(words(&[n as u32 as u64]));
    let arena = Arena::with_limit(1 << 20);
    let err = decode_command(&mut Decoder::new(&b, &arena)).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::ArenaLimit { .. }), "{err}");
    assert!(arena.used() <= 1 << 20);

    // A scalar array whose count exceeds the bytes left is a truncation, not an allocation.
    let mut b = Vec::new();
    b.extend(CommandType::CMD_SET_VIEWPORT.0.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(words(&[0x21]));
    b.extend(0u32.to_le_bytes());
    b.extend(u32::MAX.to_le_bytes());
    b.extend(words(&[u64::from(u32::MAX)]));
    let arena = Arena::new();
    let err = decode_command(&mut Decoder::new(&b, &arena)).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Truncated { .. } | ErrorKind::ArenaLimit { .. }
        ),
        "{err}"
    );
    assert!(
        arena.used() < 1 << 20,
        "nothing large was allocated: {}",
        arena.used()
    );
}

#[test]
fn strings_get_a_final_nul() {
    // vkCreateInstance with an application name whose terminator is not NUL.
    let app = ApplicationInfo {
        p_application_name: venus_protocol::Str::from_bytes_with_nul(b"vkcube\0"),
        ..Default::default()
    };
    let info = InstanceCreateInfo {
        p_application_info: Some(&app),
        ..Default::default()
    };
    let inst = Id::from_raw(1);
    let cmd = Command::CreateInstance(CreateInstanceArgs {
        p_create_info: &info,
        p_instance: &inst,
    });
    let mut e = Encoder::new();
    encode_command(&mut e, &cmd, 1);
    let mut bytes = e.into_bytes();
    let pos = bytes.windows(7).position(|w| w == b"vkcube\0").unwrap();
    bytes[pos + 6] = b'!';
    let arena = Arena::new();
    let (_, cmd) = decode_command(&mut Decoder::new(&bytes, &arena)).unwrap();
    let Command::CreateInstance(a) = cmd else {
        unreachable!()
    };
    let name = a
        .p_create_info
        .p_application_info
        .unwrap()
        .p_application_name
        .unwrap();
    assert_eq!(name.as_bytes_with_nul(), b"vkcube\0");
    assert_eq!(name.to_str().unwrap(), "vkcube");
}

#[test]
fn random_bytes_never_panic() {
    // A quick deterministic soak (the fuzzer does the real work): random words, and random
    // corruptions of valid commands.
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize * 4;
        let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if b.len() >= 4 {
            let id = (next() % 290) as i32;
            b[..4].copy_from_slice(&id.to_le_bytes());
        }
        let arena = Arena::with_limit(1 << 22);
        let mut d = Decoder::new(&b, &arena);
        while !d.is_empty() {
            if decode_command(&mut d).is_err() {
                break;
            }
        }
    }
}
