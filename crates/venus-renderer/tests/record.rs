//! Recording and the replay entry point without Vulkan: a context over `NullDispatch` records a
//! `SUBMIT_CMD2` batch (a reply stream and `vkEnumerateInstanceVersion` with a reply) and a
//! failing one; the file holds exactly the expected events, and a fresh context fed the
//! recorded commands through `Context::replay_command` writes byte-identical replies.

use std::sync::Arc;

use venus_protocol::commands::{EnumerateInstanceVersionArgs, SetReplyCommandStreamMESAArgs};
use venus_protocol::structs::CommandStreamDescriptionMESA;
use venus_protocol::{encode_command, Command, Encoder, COMMAND_GENERATE_REPLY};
use venus_renderer::record::{read_recording, split_replies, Event, RecordSink, RecordedChannel};
use venus_renderer::resources::{blob_flags, blob_type};
use venus_renderer::{BlobParams, ContextInfo, NullDispatch, Renderer};

fn enc(cmd: &Command<'_>, flags: u32) -> Vec<u8> {
    let mut e = Encoder::new();
    encode_command(&mut e, cmd, flags);
    e.as_bytes().to_vec()
}

fn blob() -> BlobParams {
    BlobParams {
        res_id: 1,
        blob_type: blob_type::HOST3D,
        flags: blob_flags::MAPPABLE,
        size: 4096,
        blob_id: 0,
    }
}

fn batch() -> (Vec<u8>, Vec<u8>) {
    let s = CommandStreamDescriptionMESA {
        resource_id: 1,
        offset: 0,
        size: 4096,
    };
    let set = enc(
        &Command::SetReplyCommandStreamMESA(SetReplyCommandStreamMESAArgs { p_stream: &s }),
        0,
    );
    let version = enc(
        &Command::EnumerateInstanceVersion(EnumerateInstanceVersionArgs { p_api_version: &0 }),
        COMMAND_GENERATE_REPLY,
    );
    (set, version)
}

#[test]
fn a_recorded_batch_replays_with_identical_replies() {
    let dir = std::env::temp_dir().join(format!("venus-record-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sink = RecordSink::new(&dir).unwrap();
    let renderer = Renderer::new(Arc::new(NullDispatch::new())).with_recording(sink);
    let info = |id| ContextInfo {
        id,
        name: "record-test".into(),
    };
    let (set, version) = batch();
    {
        let mut ctx = renderer.create_context(info(42)).unwrap();
        ctx.create_blob(&blob()).unwrap();
        ctx.submit(
            0,
            &[set.clone(), version.clone()].concat(),
            Box::new(|_| {}),
        )
        .unwrap();
        // A batch that does not decode: recorded with its error.
        assert!(ctx.submit(0, &[0xff; 8], Box::new(|_| {})).is_err());
    }
    let events = read_recording(&dir.join("ctx-42.vrec")).unwrap();
    let kinds: Vec<&Event> = events.iter().map(|e| &e.event).collect();
    assert_eq!(kinds.len(), 7, "{kinds:#?}");
    assert!(matches!(kinds[0], Event::Context { id: 42, .. }));
    assert!(matches!(kinds[1], Event::Blob { ok: true, .. }));
    let Event::Command {
        channel: RecordedChannel::Context,
        bytes,
        replies,
        error: None,
    } = kinds[3]
    else {
        panic!("{:?}", kinds[3]);
    };
    assert_eq!(bytes, &version);
    let recorded = split_replies(replies);
    assert_eq!(recorded.len(), 1);
    assert!(matches!(kinds[4], Event::Fence { ring_idx: 0 }));
    let Event::Command { error: Some(e), .. } = kinds[5] else {
        panic!("{:?}", kinds[5]);
    };
    assert!(e.contains("undecodable command at byte 0"), "{e}");
    assert_eq!(kinds[6], &Event::End);

    // Replay into a context that does not record.
    let plain = Renderer::new(Arc::new(NullDispatch::new()));
    let mut ctx = plain.create_context(info(43)).unwrap();
    ctx.create_blob(&blob()).unwrap();
    let r = ctx.replay_command(RecordedChannel::Context, &set).unwrap();
    assert!(r.is_empty());
    let r = ctx
        .replay_command(RecordedChannel::Context, &version)
        .unwrap();
    assert_eq!(split_replies(&r), recorded);
    // A ring that does not exist is fatal.
    let e = ctx
        .replay_command(RecordedChannel::Ring { id: 7, index: 0 }, &version)
        .unwrap_err();
    assert!(
        e.to_string().contains("ring 0 (id 0x7) does not exist"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
