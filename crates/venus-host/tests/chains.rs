//! Long pNext chains on a small stack: lowering (inputs and output skeletons) and raising walk
//! chains with loops, so a 256-link chain (the decoder's limit) converts on a 256 KiB thread.
//! The driver part runs `vkGetPhysicalDeviceFeatures2` on lavapipe with such a chain
//! (`venus_testkit::require`: skipped with a `SKIPPED` line without lavapipe, failed in CI).

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

use bumpalo::Bump;
use venus_host::generated::calls;
use venus_host::loader::Loader;
use venus_host::lower::{chain_header, HandleMap, Lower, LowerCx, Raise};
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::*;
use venus_protocol::{decode_reply, Arena, Chain, ChainNode, Decoder, Encoder, Id, Reply};

/// The links a chain may hold (what the decoder accepts), and the test threads' stack.
const LINKS: usize = 256;
const SMALL_STACK: usize = 256 * 1024;

#[derive(Default)]
struct Table(Mutex<HashMap<(i32, u64), u64>>);

impl HandleMap for Table {
    fn host(&self, object_type: i32, id: u64) -> Option<u64> {
        self.0.lock().unwrap().get(&(object_type, id)).copied()
    }
    fn guest(&self, object_type: i32, host: u64) -> Option<u64> {
        let t = self.0.lock().unwrap();
        t.iter()
            .find(|(k, v)| k.0 == object_type && **v == host)
            .map(|(k, _)| k.1)
    }
}

/// Runs `f` on a thread with a 256 KiB stack and returns its result.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .name("small-stack".into())
        .stack_size(SMALL_STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the small-stack thread failed")
}

/// Link `i` of the test chains: four feature structs in turn.
fn feature_link<'a>(i: usize, next: Chain<'a>) -> Ext<'a> {
    match i % 4 {
        0 => Ext::PhysicalDeviceVulkan11Features(PhysicalDeviceVulkan11Features {
            p_next: next,
            ..Default::default()
        }),
        1 => Ext::PhysicalDeviceVulkan12Features(PhysicalDeviceVulkan12Features {
            p_next: next,
            ..Default::default()
        }),
        2 => Ext::PhysicalDeviceVulkan13Features(PhysicalDeviceVulkan13Features {
            p_next: next,
            ..Default::default()
        }),
        _ => Ext::PhysicalDevice16BitStorageFeatures(PhysicalDevice16BitStorageFeatures {
            p_next: next,
            ..Default::default()
        }),
    }
}

/// A chain of `n` feature links (link 0 first), allocated in `arena`.
fn feature_chain(arena: &Bump, n: usize) -> Chain<'_> {
    let mut next: Chain<'_> = None;
    for i in (0..n).rev() {
        next = Some(&*arena.alloc(feature_link(i, next)));
    }
    next
}

/// The sTypes of a protocol chain, in order.
fn s_types(chain: Chain<'_>) -> Vec<i32> {
    let mut out = Vec::new();
    let mut link = chain;
    while let Some(l) = link {
        out.push(l.s_type());
        link = l.next();
    }
    out
}

/// The sTypes of a lowered C chain, in order.
fn c_s_types(mut p: *mut c_void) -> Vec<i32> {
    let mut out = Vec::new();
    // SAFETY: `p` is NULL or a chain that lowering built in a live arena.
    while let Some((s_type, next)) = unsafe { chain_header(p) } {
        out.push(s_type);
        p = next;
    }
    out
}

/// `PhysicalDeviceFeatures2` whose chain holds 255 feature links (256 links in all).
fn features2(arena: &Bump) -> PhysicalDeviceFeatures2<'_> {
    PhysicalDeviceFeatures2 {
        p_next: feature_chain(arena, LINKS - 1),
        ..Default::default()
    }
}

#[test]
fn input_chain_of_256_links_lowers_on_a_small_stack() {
    let got = on_small_stack(|| {
        let arena = Bump::new();
        let table = Table::default();
        let input = features2(&arena);
        let mut cx = LowerCx::new(&arena, &table);
        let c = input.lower(&mut cx).expect("lower");
        (s_types(input.p_next), c.s_type, c_s_types(c.p_next))
    });
    let (want, head, links) = got;
    assert_eq!(head, PhysicalDeviceFeatures2::STRUCTURE_TYPE);
    assert_eq!(links.len(), LINKS - 1);
    assert_eq!(links, want);
}

#[test]
fn input_chain_skips_protocol_only_links() {
    let arena = Bump::new();
    let table = Table::default();
    let tail = feature_link(1, None);
    let mesa = Ext::DeviceQueueTimelineInfoMESA(DeviceQueueTimelineInfoMESA {
        p_next: Some(&tail),
        ring_idx: 3,
    });
    let head = feature_link(0, Some(&mesa));
    let mut cx = LowerCx::new(&arena, &table);
    let c = venus_host::generated::lower::lower_chain(Some(&head), &mut cx).expect("lower");
    assert_eq!(
        c_s_types(c),
        vec![
            PhysicalDeviceVulkan11Features::STRUCTURE_TYPE.0,
            PhysicalDeviceVulkan12Features::STRUCTURE_TYPE.0
        ]
    );
}

#[test]
fn output_chain_of_256_links_lowers_and_raises_on_a_small_stack() {
    let (want, lowered, raised) = on_small_stack(|| {
        let arena = Bump::new();
        let table = Table::default();
        let skeleton = features2(&arena);
        let mut cx = LowerCx::new(&arena, &table);
        let c = skeleton.lower_out(&mut cx).expect("lower_out");
        let lowered = c_s_types(c.p_next);
        let raised = PhysicalDeviceFeatures2::raise(&skeleton, &c, &mut cx).expect("raise");
        (s_types(skeleton.p_next), lowered, s_types(raised.p_next))
    });
    assert_eq!(want.len(), LINKS - 1);
    assert_eq!(lowered, want);
    assert_eq!(raised, want);
}

#[test]
fn raise_rejects_a_c_chain_that_does_not_match_the_skeleton() {
    let arena = Bump::new();
    let table = Table::default();
    let skeleton = features2(&arena);
    let other = PhysicalDeviceFeatures2 {
        p_next: feature_chain(&arena, 3),
        ..Default::default()
    };
    let mut cx = LowerCx::new(&arena, &table);
    let mut c = other.lower_out(&mut cx).expect("lower_out");
    // A 3-link C chain under a 255-link skeleton: the 4th skeleton link has no C link.
    let err = PhysicalDeviceFeatures2::raise(&skeleton, &c, &mut cx).unwrap_err();
    assert_eq!(
        err,
        venus_host::lower::LowerError::ChainMismatch(
            PhysicalDevice16BitStorageFeatures::STRUCTURE_TYPE.0
        )
    );
    // A C chain whose first link has another sType.
    c.p_next = other.lower_out(&mut cx).unwrap().p_next;
    // SAFETY: `c.p_next` is a link lower_out allocated in `arena`; sType is its first member.
    unsafe { *(c.p_next as *mut i32) = PhysicalDeviceVulkan13Features::STRUCTURE_TYPE.0 };
    let err = PhysicalDeviceFeatures2::raise(&skeleton, &c, &mut cx).unwrap_err();
    assert_eq!(
        err,
        venus_host::lower::LowerError::ChainMismatch(
            PhysicalDeviceVulkan11Features::STRUCTURE_TYPE.0
        )
    );
}

/// `vkGetPhysicalDeviceFeatures2` with a 256-link chain on lavapipe, on a small stack, through
/// the generated executor; the reply encodes and decodes.
#[test]
fn features2_with_256_links_through_lavapipe_on_a_small_stack() {
    let Some(tools) = venus_testkit::require(
        "features2_with_256_links_through_lavapipe_on_a_small_stack",
        &[venus_testkit::Tool::LavapipeIcd],
    ) else {
        return;
    };
    std::env::set_var("VK_DRIVER_FILES", tools.lavapipe_icd());
    let loader = Loader::open().expect("Vulkan loader");
    let (instance, pd) = instance_and_device(&loader);
    let ip = loader.instance_procs(instance);
    let pd_raw = pd.0;
    let procs = ip;
    let (links, timeline, round_trip) = on_small_stack(move || {
        let arena = Bump::new();
        let table = Table::default();
        table.0.lock().unwrap().insert(
            (
                <venus_protocol::handles::PhysicalDevice as venus_protocol::Handle>::OBJECT_TYPE,
                7,
            ),
            pd_raw,
        );
        let skeleton = features2(&arena);
        let args = GetPhysicalDeviceFeatures2Args {
            physical_device: Id::from_raw(7),
            p_features: &skeleton,
        };
        let mut cx = LowerCx::new(&arena, &table);
        // SAFETY: the table holds the live physical device only.
        let (reply, _) =
            unsafe { calls::get_physical_device_features2(&procs, &mut cx, &args) }.unwrap();
        let raised = reply.p_features;
        let timeline: Vec<u32> = chain_links(raised.p_next)
            .filter_map(|l| match l {
                Ext::PhysicalDeviceVulkan12Features(v) => Some(v.timeline_semaphore),
                _ => None,
            })
            .collect();
        let reply = Reply::GetPhysicalDeviceFeatures2(reply);
        let mut e = Encoder::new();
        reply.encode(&mut e);
        let decode_arena = Arena::new();
        let back = decode_reply(&mut Decoder::new(e.as_bytes(), &decode_arena)).unwrap();
        // Compared by re-encoding: the derived `PartialEq` of chains recurses per link.
        let mut again = Encoder::new();
        back.encode(&mut again);
        (
            s_types(raised.p_next).len(),
            timeline,
            again.as_bytes() == e.as_bytes(),
        )
    });
    assert_eq!(links, LINKS - 1);
    // Every VkPhysicalDeviceVulkan12Features link was filled (lavapipe has timeline semaphores).
    assert_eq!(timeline, vec![1; LINKS / 4]);
    assert!(
        round_trip,
        "the reply did not decode and encode to the same bytes"
    );
    // SAFETY: nothing else uses the instance any more.
    unsafe { (ip.destroy_instance.unwrap())(instance, std::ptr::null()) };
}

fn chain_links<'a>(chain: Chain<'a>) -> impl Iterator<Item = &'a Ext<'a>> {
    std::iter::successors(chain, |l| l.next())
}

/// A Vulkan 1.3 instance and its first physical device.
fn instance_and_device(loader: &Loader) -> (vk::Instance, vk::PhysicalDevice) {
    let global = loader.global_procs();
    let app = vk::ApplicationInfo {
        api_version: (1 << 22) | (3 << 12),
        ..Default::default()
    };
    let info = vk::InstanceCreateInfo {
        p_application_info: &app,
        ..Default::default()
    };
    let mut instance = vk::Instance::NULL;
    // SAFETY: `info` and `app` outlive the call; `instance` is a valid out pointer.
    let r = unsafe { (global.create_instance.unwrap())(&info, std::ptr::null(), &mut instance) };
    assert_eq!(r, venus_protocol::types::VkResult::SUCCESS);
    let ip = loader.instance_procs(instance);
    let mut count = 1u32;
    let mut pd = vk::PhysicalDevice::NULL;
    // SAFETY: instance is live; `pd` has room for `count` = 1 handle.
    unsafe { (ip.enumerate_physical_devices.unwrap())(instance, &mut count, &mut pd) };
    assert_ne!(pd, vk::PhysicalDevice::NULL);
    (instance, pd)
}
